const { setUpApp, openPage, text, settle } = require("./support/page");

const ROOM = { id: 3, title: "冬季护肤专场", description: "", status: "scheduled", scheduled_start: "2099-12-07T12:00:00+00:00", started_at: null, ended_at: null, cover: "", streamer: { id: 2, name: "小美", followers: 120 } };

function serveWarmup(transport) {
  transport.route("GET", "/api/v1/me/coupons", { statusCode: 200, data: [] });
  transport.route("GET", "/api/v1/rooms/3/public", { statusCode: 200, data: { room: ROOM, play_url: "", products: [], pinned: null, coupons: [], me: { following: false, reservation: null, chat: {} } } });
  transport.route("GET", "/api/v1/rooms/3/state", { statusCode: 200, data: { seq: 1, status: "scheduled", chat: [] } });
  const calls = [];
  transport.route("POST", "/api/v1/viewer/mp-subscriptions", (req) => { calls.push(["consent", req.data]); return { statusCode: 201, data: { unused: { TPL_LIVE: 1 } } }; });
  transport.route("POST", "/api/v1/rooms/3/reserve", (req) => { calls.push(["reserve", req.data]); return { statusCode: 201, data: { room: 3, remind_at: "2099-12-07T11:50:00+00:00", created: true } }; });
  return calls;
}

test("reserving asks for the subscribe message, records the consent on the contact, then reserves", async () => {
  const app = setUpApp();
  const calls = serveWarmup(app.transport);
  wx.requestSubscribeMessage.mockImplementation(({ tmplIds, success }) => success({ errMsg: "requestSubscribeMessage:ok", [tmplIds[0]]: "accept" }));
  const page = await openPage("pages/room/room", { id: "3" });
  expect(text(page, ".countdown")).toMatch(/^距开播 \d+小时\d+分\d+秒$/);
  page.querySelector(".reserve").dispatchEvent("tap");
  await settle();
  expect(wx.requestSubscribeMessage.mock.calls[0][0].tmplIds).toEqual(["TPL_LIVE"]);
  expect(calls).toEqual([["consent", { results: { TPL_LIVE: "accept" } }], ["reserve", { remind: "mp_subscribe" }]]);
  expect(text(page, ".reservation")).toBe("已预约，开播时微信提醒你");
  expect(text(page, ".reserve")).toBe("已预约");
  page.instance.onUnload();
});

test("a refused prompt still reserves, says no reminder will come, and the server's own sentence wins", async () => {
  const app = setUpApp();
  const calls = serveWarmup(app.transport);
  wx.requestSubscribeMessage.mockImplementation(({ tmplIds, success }) => success({ [tmplIds[0]]: "reject" }));
  const page = await openPage("pages/room/room", { id: "3" });
  page.instance.reserve();
  await settle();
  expect(calls[0]).toEqual(["consent", { results: { TPL_LIVE: "reject" } }]);
  expect(text(page, ".reservation")).toBe("已预约。未订阅提醒，开播时可能收不到通知");

  const again = setUpApp();
  serveWarmup(again.transport);
  again.transport.route("POST", "/api/v1/rooms/3/reserve", { statusCode: 201, data: { room: 3, created: true, reminder: { deliverable: true, channel: "mp_subscribe", message: "已预约，开播前10分钟微信提醒你" } } });
  wx.requestSubscribeMessage.mockImplementation(({ fail }) => fail({ errCode: 20004, errMsg: "requestSubscribeMessage:fail" }));
  const second = await openPage("pages/room/room", { id: "3" });
  await second.instance.reserve();
  expect(again.transport.requests.some((r) => r.url.endsWith("/mp-subscriptions"))).toBe(false);
  expect(text(second, ".reservation")).toBe("已预约，开播前10分钟微信提醒你");
  page.instance.onUnload();
  second.instance.onUnload();
});

test("the share card carries the viewer's invite code once the poster page learned it", async () => {
  const app = setUpApp();
  serveWarmup(app.transport);
  const room = await openPage("pages/room/room", { id: "3" });
  expect(room.instance.onShareAppMessage().path).toBe("/pages/room/room?id=3");
  const poster = await openPage("pages/poster/poster", { id: "3" });
  const downloads = app.transport.requests.filter((r) => r.method === "DOWNLOAD").map((r) => r.url);
  expect(downloads).toEqual(["https://live.example.com/api/v1/rooms/3/invite-poster", "https://live.example.com/api/v1/rooms/3/mp-code"]);
  expect(poster.querySelector(".poster-img")).toBeTruthy();
  expect(poster.querySelector(".mp-code-img")).toBeTruthy();
  expect(room.instance.onShareAppMessage()).toEqual({ title: "冬季护肤专场", path: "/pages/room/room?id=3&invite=abcd1234", imageUrl: undefined });
  room.instance.onUnload();
});

test("a viewer without a name is asked for one (WeChat's nickname input) before the poster is made", async () => {
  const app = setUpApp();
  app.transport.route("POST", "/api/v1/viewer/session", { statusCode: 201, data: { token: "t1", contact_id: 7, nickname: "" } });
  app.transport.route("POST", "/api/v1/viewer/nickname", (req) => (req.data.nickname === "发票小王"
    ? { statusCode: 400, data: { code: "content_risky", message: "昵称未通过内容安全检查，请换一个", fields: { nickname: ["昵称未通过内容安全检查，请换一个"] } } }
    : { statusCode: 200, data: { nickname: req.data.nickname, token: "t2" } }));
  const poster = await openPage("pages/poster/poster", { id: "3" });
  expect(poster.querySelector(".nickname")).toBeTruthy();
  expect(app.transport.requests.some((r) => r.method === "DOWNLOAD")).toBe(false);
  poster.instance.onNickname({ detail: { value: "发票小王" } });
  await poster.instance.saveNickname();
  expect(text(poster, ".name-error")).toBe("昵称未通过内容安全检查，请换一个");
  poster.instance.onNickname({ detail: { value: "小红" } });
  await poster.instance.saveNickname();
  await settle();
  expect(app.storage.data["qm.session.demo"]).toMatchObject({ token: "t2", nickname: "小红", contact_id: 7 });
  expect(app.transport.requests.filter((r) => r.method === "DOWNLOAD")[0]).toMatchObject({ header: { Authorization: "Token t2" } });
  expect(poster.querySelector(".poster-img")).toBeTruthy();
});
