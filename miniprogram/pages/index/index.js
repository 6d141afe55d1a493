// Entry page: decides where a launch goes (a shared room, a scanned mini-program code, or
// the brand's streamer) and remembers the invite code for the first login.
const config = require("../../config");
const { parseScene } = require("../../utils/scene");

Component({
  data: { message: "" },
  methods: {
    onLoad(query) {
      const where = parseScene(query || {});
      if (where.invite) wx.setStorageSync("qm.invite", where.invite);
      const room = where.room || config.defaultRoom;
      if (room) {
        const extra = where.clip ? `&clip=${where.clip}` : "";
        wx.redirectTo({ url: `/pages/room/room?id=${room}${where.invite ? `&invite=${where.invite}` : ""}${extra}` });
        return;
      }
      if (config.defaultStreamer) {
        wx.redirectTo({ url: `/pages/streamer/streamer?id=${config.defaultStreamer}` });
        return;
      }
      this.setData({ message: "请通过直播间分享卡片或二维码进入" });
    },
  },
});
