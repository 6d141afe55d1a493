const config = require("./config");

App({
  onLaunch() {
    // project.config.json and config.js must name the same AppID: the server exchanges
    // wx.login codes with the appid it holds for this mini-program.
    try {
      const info = wx.getAccountInfoSync();
      const running = info && info.miniProgram && info.miniProgram.appId;
      if (running && config.appid && running !== config.appid) {
        console.warn(`config.js appid ${config.appid} differs from the running ${running}`);
      }
    } catch (err) {
      /* not available in every base library */
    }
  },
});
