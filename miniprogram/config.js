// The one file a brand edits before opening the project in WeChat's developer tool
// (README "Mini-program"). Everything else is shared code.
module.exports = {
  // The mini-program's AppID (微信公众平台 → 开发管理 → 开发设置). project.config.json carries
  // the same value for the developer tool; test/config.test.js fails when the two differ.
  appid: "wxdemomp00000000",
  // Where Qianmian is served: https in production (add it to the mini-program's 服务器域名:
  // request, socket and downloadFile). The WebSocket address follows it (https → wss).
  apiHost: "http://127.0.0.1:8000",
  // The organisation (brand) slug this mini-program belongs to.
  org: "demo",
  // The WeChat account id of this mini-program in Qianmian, when the organisation has more
  // than one mini-program (null: the organisation's only one).
  wechatAccount: null,
  // Subscribe-message template ids this mini-program owns (公众平台 → 订阅消息 → 我的模板):
  // asked for with wx.requestSubscribeMessage when a viewer reserves a room.
  subscribeTemplates: {
    liveStart: "",
  },
  // The brand's mall mini-program: product cards open mp_path in it (empty: the product's
  // web link is copied instead — a mini-program may only open its own business domains).
  mallAppId: "",
  // true when the CDN serves each live stream as FLV next to HLS (Tencent Cloud live does):
  // the room then plays it in live-player with lower latency than HLS in video.
  liveFlv: false,
  // The room the mini-program opens on when started without a room (e.g. from the menu).
  defaultRoom: null,
  defaultStreamer: null,
};
