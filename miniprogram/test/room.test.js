const { setUpApp, openPage, text, all, settle } = require("./support/page");

const ROOM = {
  id: 3, title: "冬季护肤专场", description: "", status: "live", scheduled_start: "2026-12-07T12:00:00+00:00",
  started_at: null, ended_at: null, cover: "", streamer: { id: 2, name: "小美", followers: 120 },
};
const PRODUCTS = [
  { id: 11, name: "保湿面霜", price: "99.00", original_price: "199.00", image: "", link_url: "https://mall.example.cn/item/11", mp_path: "", clip: null, pinned: false },
  { id: 12, name: "精华液", price: "159.00", original_price: null, image: "", link_url: "", mp_path: "", clip: null, pinned: false },
];
const COUPON = { id: 5, name: "直播间专享", kind: "threshold", amount: "20.00", threshold: "199.00", stock: 10, remaining: 10, per_viewer_limit: 1, valid_until: "2026-12-31T00:00:00+00:00", released: true };

function serveRoom(transport, { status = "live", me = {}, coupons = [COUPON], chat = [], seq = 100 } = {}) {
  transport.route("GET", "/api/v1/me/coupons", { statusCode: 200, data: [] });
  transport.route("GET", "/api/v1/rooms/3/public", () => ({
    statusCode: 200,
    data: { room: { ...ROOM, status }, play_url: "https://cdn.example.com/hls/k.m3u8", products: PRODUCTS, pinned: null, coupons,
      me: { contact_id: 7, nickname: "微信用户7", following: false, reservation: null, chat: { banned: false, muted: false, muted_until: null }, phone_bound: false, ...me } },
  }));
  transport.route("GET", "/api/v1/rooms/3/state", () => ({
    statusCode: 200,
    data: { seq, room: 3, status, title: ROOM.title, online: 5, likes: 40, pinned_product: null, announcement: "", chat, chat_settings: { slow_mode_seconds: 0, premoderation: false }, products: PRODUCTS, coupons },
  }));
}

async function openLiveRoom(options) {
  const app = setUpApp();
  serveRoom(app.transport, options);
  const page = await openPage("pages/room/room", { id: "3", invite: "abcd1234" });
  app.transport.socket.open();
  return { ...app, page, socket: app.transport.socket };
}

afterEach(() => jest.restoreAllMocks());

describe("room page, live", () => {
  test("logs in with the invite, shows the room and plays HLS in the video component", async () => {
    const { page, transport, socket } = await openLiveRoom();
    expect(transport.requests[0].data).toEqual({ org: "demo", mp_code: "code-1", room: 3, invite: "abcd1234" });
    expect(text(page, ".head .title")).toBe("冬季护肤专场");
    expect(page.querySelector("#live")).toBeTruthy();
    expect(all(page, ".product")).toEqual(["保湿面霜¥99", "精华液¥159"]);
    expect(text(page, ".likes")).toBe("40");
    expect(socket.sent).toEqual([{ type: "resume", after_seq: 100 }]);
    page.instance.onUnload();
  });

  test("the 'now explaining' card, coupons, chat, announcements and deletes follow the socket", async () => {
    const { page, socket } = await openLiveRoom();
    socket.push({ seq: 101, type: "product.pinned", product: { ...PRODUCTS[1], clip: 4 } });
    socket.push({ type: "batch", events: [
      { seq: 102, type: "chat", id: 1, text: "想要 3 号链接", nickname: "小王", contact_id: 8, host: false, status: "visible", at: "2026-12-07T12:01:00+00:00" },
      { seq: 103, type: "chat", id: 2, text: "马上上链接", nickname: "小美", contact_id: null, host: true, status: "visible", at: "2026-12-07T12:01:05+00:00" },
      { seq: 104, type: "announcement", text: "今晚 8 点抽奖" },
      { seq: 105, type: "like", count: 99, delta: 59 },
      { seq: 106, type: "online", count: 812 },
    ] });
    await settle();
    expect(text(page, ".pinned .name")).toBe("精华液");
    expect(all(page, ".line")).toEqual(["小王：想要 3 号链接", "主播 小美：马上上链接"]);
    expect(text(page, ".announcement")).toBe("公告：今晚 8 点抽奖");
    expect(text(page, ".likes")).toBe("99");
    socket.push({ seq: 107, type: "moderation", action: "delete", message_id: 1 });
    socket.push({ seq: 108, type: "coupon.stock", coupon: 5, remaining: 3 });
    socket.push({ seq: 109, type: "product.pinned", product: null });
    await settle();
    expect(all(page, ".line")).toEqual(["主播 小美：马上上链接"]);
    expect(text(page, ".coupon .muted")).toBe("剩余 3 张");
    expect(page.querySelector(".pinned")).toBeFalsy();
    page.instance.onUnload();
  });

  test("a released coupon pops up and the claim's answer is shown, also sold out and limit reached", async () => {
    const { page, socket, transport, calls } = await openLiveRoom({ coupons: [] });
    socket.push({ seq: 101, type: "coupon.released", coupon: COUPON });
    await settle();
    expect(text(page, ".pop .label")).toBe("满199减20");
    transport.route("POST", "/api/v1/coupons/5/claim", { statusCode: 201, data: { coupon: 5, contact: 7, nth: 1, slot: 3, code: "3-7-1234", remaining: 7 } });
    page.querySelector(".pop .btn").dispatchEvent("tap");
    await settle();
    expect(text(page, ".pop .answer")).toBe("领取成功！可在“我的优惠券”查看");
    expect(text(page, ".coupon .muted")).toBe("核销码 3-7-1234");
    expect(text(page, ".coupon .claim")).toBe("已领取");

    socket.push({ seq: 102, type: "coupon.released", coupon: { ...COUPON, id: 6, name: "秒杀券" } });
    transport.route("POST", "/api/v1/coupons/6/claim", { statusCode: 409, data: { code: "sold_out", message: "优惠券已抢光" } });
    await settle();
    page.querySelector(".pop .btn").dispatchEvent("tap");
    await settle();
    expect(text(page, ".pop .answer")).toBe("手慢了，优惠券已抢光");
    expect(calls.toasts).toContain("手慢了，优惠券已抢光");
    expect(all(page, ".coupon .claim")).toEqual(["已领取", "已抢光"]);

    socket.push({ seq: 103, type: "coupon.released", coupon: { ...COUPON, id: 8 } });
    transport.route("POST", "/api/v1/coupons/8/claim", { statusCode: 409, data: { code: "limit_reached", message: "已达领取上限" } });
    await settle();
    page.querySelector(".pop .btn").dispatchEvent("tap");
    await settle();
    expect(text(page, ".pop .answer")).toBe("您已领过该券，每人限领已满");
    page.instance.onUnload();
  });

  test("after a drop the page reconnects, resumes by seq and shows what it missed once", async () => {
    const { page, socket, transport, timers } = await openLiveRoom();
    socket.push({ seq: 101, type: "chat", id: 1, text: "第一条", nickname: "小王", contact_id: 8, status: "visible" });
    socket.drop(1006);
    await settle();
    expect(text(page, ".connection")).toBe("网络不稳定，正在重新连接…");
    await timers.flush();
    const again = transport.socket;
    expect(again).not.toBe(socket);
    again.open();
    await settle();
    expect(again.sent).toEqual([{ type: "resume", after_seq: 101 }]);
    again.push({ type: "batch", events: [
      { seq: 101, type: "chat", id: 1, text: "第一条", nickname: "小王", contact_id: 8, status: "visible" },
      { seq: 104, type: "chat", id: 2, text: "断线时发的", nickname: "小李", contact_id: 9, status: "visible" },
    ] });
    await settle();
    expect(all(page, ".line")).toEqual(["小王：第一条", "小李：断线时发的"]);
    expect(page.querySelector(".connection")).toBeFalsy();
    page.instance.onUnload();
  });

  test("chat and likes go over the socket; likes are summed into one frame", async () => {
    const { page, socket } = await openLiveRoom();
    page.instance.onInput({ detail: { value: "主播好" } });
    page.querySelector(".send").dispatchEvent("tap");
    page.querySelector(".like").dispatchEvent("tap");
    page.querySelector(".like").dispatchEvent("tap");
    page.querySelector(".like").dispatchEvent("tap");
    await settle();
    expect(socket.sent.slice(1)).toEqual([{ type: "chat", text: "主播好" }]); // likes wait for the second
    clearTimeout(page.instance.likeTimer);
    page.instance.flushLikes();
    expect(socket.sent.slice(1)).toEqual([{ type: "chat", text: "主播好" }, { type: "like", count: 3 }]);
    expect(page.instance.data.input).toBe("");
    page.instance.onUnload();
  });
});

describe("room page, moderation as the H5 page does it", () => {
  test("own shadowed and pending messages are shown to their author only, pending marked", async () => {
    const { page, socket } = await openLiveRoom();
    socket.push({ type: "batch", events: [
      { seq: 101, type: "chat", id: 1, text: "我被影子封禁了", nickname: "我", contact_id: 7, status: "shadow" },
      { seq: 102, type: "chat", id: 2, text: "等审核", nickname: "我", contact_id: 7, status: "pending" },
      { seq: 103, type: "chat", id: 3, text: "别人的待审", nickname: "小王", contact_id: 8, status: "pending" },
    ] });
    await settle();
    expect(all(page, ".line")).toEqual(["我：我被影子封禁了", "我：等审核审核中，通过后大家可见"]);
    socket.push({ seq: 104, type: "chat", id: 2, text: "等审核", nickname: "我", contact_id: 7, status: "visible" });
    await settle();
    expect(all(page, ".line")).toEqual(["我：我被影子封禁了", "我：等审核"]);
    page.instance.onUnload();
  });

  test("refusals are told and the refused text comes back; mute and ban lock the box", async () => {
    const { page, socket, calls } = await openLiveRoom();
    page.instance.onInput({ detail: { value: "加微信 123" } });
    page.instance.sendChat();
    socket.push({ type: "notice", code: "sensitive", message: "" });
    await settle();
    expect(text(page, ".chat-error")).toBe("消息包含敏感词，未发送");
    expect(page.instance.data.input).toBe("加微信 123");
    socket.push({ type: "notice", code: "rate_limited" });
    socket.push({ type: "notice", code: "slow_mode", seconds: 30 });
    await settle();
    expect(calls.toasts).toEqual(expect.arrayContaining(["发言太快了，请稍后再试", "慢速模式：新观众每 30 秒可发言一次"]));
    socket.push({ seq: 101, type: "moderation", action: "settings", slow_mode_seconds: 10, premoderation: true });
    await settle();
    expect(text(page, ".chat-state")).toBe("本场发言需主播审核后显示");
    expect(all(page, ".line.system")).toEqual(["主播开启了发言审核", "主播开启了慢速模式：新观众每 10 秒可发言一次"]);
    socket.push({ seq: 102, type: "moderation", action: "mute", contact_id: 8, until: null });
    await settle();
    expect(page.instance.data.chat.blocked).toBe(false); // another viewer's mute
    socket.push({ seq: 103, type: "moderation", action: "mute", contact_id: 7, until: null });
    await settle();
    expect(text(page, ".chat-state")).toBe("你已被主播禁言");
    expect(page.instance.data.chat.blocked).toBe(true);
    expect(page.instance.sendChat()).toBe(false);
    socket.push({ seq: 104, type: "moderation", action: "unmute", contact_id: 7 });
    await settle();
    expect(page.instance.data.chat.blocked).toBe(false);
    socket.push({ seq: 105, type: "moderation", action: "ban", contact_id: 7, until: null });
    socket.drop(4403);
    await settle();
    expect(text(page, ".chat-state")).toBe("你已被移出直播间");
    page.instance.onUnload();
  });

  test("a mute found at load (me.chat) locks the box after a reload", async () => {
    const { page } = await openLiveRoom({ me: { chat: { banned: false, muted: true, muted_until: "2099-01-01T10:05:00+00:00" } } });
    expect(text(page, ".chat-state")).toMatch(/^你已被禁言，\d\d:\d\d 后可再发言$/);
    page.instance.onUnload();
  });
});

describe("room page, draws, end and replay", () => {
  test("a draw result names the winners, and tells a winner they won", async () => {
    const { page, socket } = await openLiveRoom();
    socket.push({ seq: 101, type: "draw.result", draw: 1, prize: "面霜正装", winners: [{ contact_id: 8, nickname: "小王" }, { contact_id: 9, nickname: "小李" }] });
    await settle();
    expect(text(page, ".draw")).toBe("开奖啦中奖观众：小王、小李知道了");
    page.querySelector(".draw .close").dispatchEvent("tap");
    await settle();
    expect(page.querySelector(".draw")).toBeFalsy();
    socket.push({ seq: 102, type: "draw.result", draw: 2, prize: "面霜正装", winners: [{ contact_id: 7, nickname: "我" }] });
    await settle();
    expect(text(page, ".draw")).toBe("恭喜你中奖了！奖品：面霜正装知道了");
    page.instance.onUnload();
  });

  test("when the room ends the chat goes and the replay plays with per-product clip jumps", async () => {
    const { page, socket, transport, video } = await openLiveRoom();
    transport.route("GET", "/api/v1/rooms/3/replay", { statusCode: 200, data: { url: "https://cdn.example.com/rec/3.mp4", duration_s: 3600, clips: [
      { id: 4, product: PRODUCTS[0], start_s: 65, end_s: 190 },
      { id: 6, product: PRODUCTS[1], start_s: 600, end_s: 720 },
    ] } });
    transport.route("POST", "/api/v1/rooms/3/replay/watch", { statusCode: 204, data: "" });
    socket.push({ seq: 101, type: "room.status", status: "ended" });
    await settle();
    expect(page.querySelector(".chat")).toBeFalsy();
    expect(page.querySelector("#replay")).toBeTruthy();
    expect(all(page, ".clip")).toEqual(["保湿面霜 ¥991:05 – 3:10", "精华液 ¥15910:00 – 12:00"]);
    page.querySelectorAll(".clip")[1].dispatchEvent("tap");
    await settle();
    expect(video.seek).toHaveBeenCalledWith(600);
    expect(transport.requests.filter((r) => r.url.endsWith("/replay/watch")).pop().data).toEqual({ clip: 6 });
    page.instance.onReplayTime({ detail: { currentTime: 721 } });
    expect(video.pause).toHaveBeenCalled();
  });

  test("an ended room without a replay yet says so instead of a blank page", async () => {
    const app = setUpApp();
    serveRoom(app.transport, { status: "ended" });
    app.transport.route("GET", "/api/v1/rooms/3/replay", { statusCode: 404, data: { code: "replay_not_ready", message: "回放尚未生成" } });
    const page = await openPage("pages/room/room", { id: "3" });
    expect(text(page, ".ended")).toBe("直播已结束，回放生成中，稍后再来看看");
    expect(app.transport.sockets).toHaveLength(0);
  });

  test("an unreachable API host is a message with a retry button, not a blank page", async () => {
    const app = setUpApp();
    app.transport.route("POST", "/api/v1/viewer/session", { errMsg: "request:fail -102" });
    const page = await openPage("pages/room/room", { id: "3" });
    expect(text(page, ".error-box .title")).toBe("无法连接服务器（live.example.com），请检查网络后重试");
    serveRoom(app.transport);
    app.transport.route("POST", "/api/v1/viewer/session", { statusCode: 201, data: { token: "t", contact_id: 7 } });
    page.querySelector(".retry").dispatchEvent("tap");
    await page.instance.loaded;
    await settle();
    expect(text(page, ".head .title")).toBe("冬季护肤专场");
    page.instance.onUnload();
  });
});

test("a viewer without a name is asked for one before the first chat, then the socket reconnects with it", async () => {
  const app = setUpApp();
  serveRoom(app.transport);
  app.transport.route("POST", "/api/v1/viewer/session", { statusCode: 201, data: { token: "t1", contact_id: 7, nickname: "" } });
  app.transport.route("POST", "/api/v1/viewer/nickname", { statusCode: 200, data: { nickname: "小红", token: "t2" } });
  const page = await openPage("pages/room/room", { id: "3" });
  const first = app.transport.socket;
  first.open();
  page.instance.onInput({ detail: { value: "主播好" } });
  expect(page.instance.sendChat()).toBe(false);
  await settle();
  expect(page.querySelector(".nickname")).toBeTruthy();
  page.instance.onNickname({ detail: { value: "小红" } });
  await page.instance.saveNickname();
  await settle();
  const second = app.transport.socket;
  expect(second).not.toBe(first);
  expect(second.token).toBe("t2");
  second.open();
  await settle();
  expect(second.sent).toEqual([{ type: "resume", after_seq: 100 }]);
  expect(page.instance.sendChat()).toBe(true);
  expect(second.sent[1]).toEqual({ type: "chat", text: "主播好" });
  page.instance.onUnload();
});
