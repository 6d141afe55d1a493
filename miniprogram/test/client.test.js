const { createClient, socketBase } = require("../utils/client");
const { fakeTransport, memoryStorage, manualTimers, settle, config } = require("./support/fake");

function setUp({ now = 1_000_000, storage = memoryStorage() } = {}) {
  const transport = fakeTransport();
  const timers = manualTimers();
  const clock = { t: now };
  const client = createClient({ config, transport, storage, timers, now: () => clock.t, random: () => 0.5 });
  return { client, transport, storage, timers, clock };
}

function stateRoute(transport, state) {
  const calls = [];
  transport.route("GET", "/api/v1/rooms/3/state", (req) => {
    calls.push(req);
    return { statusCode: 200, data: typeof state === "function" ? state(calls.length) : state };
  });
  return calls;
}

describe("session", () => {
  test("wx.login's code buys a viewer token that is kept in storage", async () => {
    const { client, transport, storage } = setUp();
    const session = await client.ensureSession({ room: 3, invite: "abcd1234" });
    expect(session.token).toBe("tok-1");
    const login = transport.requests[0];
    expect(login.url).toBe("https://live.example.com/api/v1/viewer/session");
    expect(login.data).toEqual({ org: "demo", mp_code: "code-1", room: 3, invite: "abcd1234" });
    expect(storage.data["qm.session.demo"].token).toBe("tok-1");
    // a second page asks again: from storage, no new wx.login
    await client.ensureSession();
    expect(transport.logins).toBe(1);
  });

  test("concurrent callers share one login (wx.login codes are single-use)", async () => {
    const { client, transport } = setUp();
    const [a, b] = await Promise.all([client.ensureSession(), client.ensureSession()]);
    expect(a.token).toBe(b.token);
    expect(transport.logins).toBe(1);
  });

  test("a token near its expiry is renewed before use", async () => {
    const { client, transport, clock } = setUp();
    await client.ensureSession();
    clock.t += 10 * 3600 * 1000 + 1;
    transport.route("GET", "/api/v1/me/coupons", (req) => ({ statusCode: 200, data: [{ auth: req.header.Authorization }] }));
    const body = await client.api("/api/v1/me/coupons");
    expect(transport.logins).toBe(2);
    expect(body[0].auth).toBe("Token tok-2");
  });

  test("a 401 renews the session once and retries; a second 401 stands", async () => {
    const { client, transport } = setUp();
    transport.route("GET", "/api/v1/me/coupons", (req) =>
      req.header.Authorization === "Token tok-2"
        ? { statusCode: 200, data: [] }
        : { statusCode: 401, data: { code: "not_authenticated", message: "登录已过期" } });
    await expect(client.api("/api/v1/me/coupons")).resolves.toEqual([]);
    expect(transport.logins).toBe(2);

    transport.route("GET", "/api/v1/me/coupons", () => ({ statusCode: 401, data: { code: "not_authenticated", message: "登录已过期" } }));
    await expect(client.api("/api/v1/me/coupons")).rejects.toMatchObject({ status: 401, code: "not_authenticated" });
    expect(transport.logins).toBe(3);
  });

  test("a failed wx.login is a clear error", async () => {
    const { client, transport } = setUp();
    transport.loginFails = true;
    await expect(client.ensureSession()).rejects.toMatchObject({ code: "login_failed", message: "微信登录失败，请稍后重试" });
  });

  test("phone binding's new token replaces the stored one", async () => {
    const { client, storage } = setUp();
    await client.ensureSession();
    client.adoptToken({ token: "merged", contact_id: 9, phone_bound: true });
    expect(storage.data["qm.session.demo"]).toMatchObject({ token: "merged", contact_id: 9, phone_bound: true });
  });
});

describe("errors", () => {
  test("an unreachable host says so, naming the host", async () => {
    const { client, transport } = setUp();
    transport.route("POST", "/api/v1/viewer/session", { errMsg: "request:fail -102:net::ERR_CONNECTION_REFUSED" });
    await expect(client.ensureSession()).rejects.toMatchObject({
      code: "network",
      message: "无法连接服务器（live.example.com），请检查网络后重试",
    });
  });

  test("a timeout, a 5xx and a domain 4xx each keep their meaning", async () => {
    const { client, transport } = setUp();
    await client.ensureSession();
    transport.route("GET", "/slow", { errMsg: "request:fail timeout" });
    await expect(client.api("/slow")).rejects.toMatchObject({ code: "timeout" });
    transport.route("GET", "/boom", { statusCode: 502, data: "<html>bad gateway</html>" });
    await expect(client.api("/boom")).rejects.toMatchObject({ code: "server_error", status: 502, message: "服务器开小差了，请稍后再试" });
    transport.route("POST", "/api/v1/coupons/5/claim", { statusCode: 409, data: { code: "sold_out", message: "优惠券已抢光" } });
    await expect(client.api("/api/v1/coupons/5/claim", { method: "POST" })).rejects.toMatchObject({ code: "sold_out", status: 409, message: "优惠券已抢光" });
  });

  test("https hosts get wss sockets", () => {
    expect(socketBase("https://live.example.com/")).toBe("wss://live.example.com");
    expect(socketBase("http://127.0.0.1:8000")).toBe("ws://127.0.0.1:8000");
  });
});

describe("connectRoom", () => {
  test("state first, then the socket resumes from the state's seq and drops duplicates", async () => {
    const { client, transport } = setUp();
    stateRoute(transport, { seq: 100, status: "live", chat: [] });
    const events = [];
    const states = [];
    const room = client.connectRoom({ roomId: 3, onEvent: (e) => events.push(e), onState: (s) => states.push(s) });
    await room.ready;
    expect(states).toHaveLength(1);
    const socket = transport.socket;
    expect(socket.url).toBe("wss://live.example.com/ws/rooms/3/?token=tok-1");
    socket.open();
    expect(socket.sent).toEqual([{ type: "resume", after_seq: 100 }]);
    socket.push({ type: "hello", seq: 100 });
    socket.push({ seq: 99, type: "chat", text: "old" });
    socket.push({ type: "batch", events: [{ seq: 101, type: "chat", text: "a" }, { seq: 102, type: "like", count: 5 }] });
    socket.push({ seq: 102, type: "like", count: 5 });
    socket.push({ type: "notice", code: "resumed", seq: 102 });
    socket.push({ type: "notice", code: "muted", until: null });
    expect(events.map((e) => e.text || e.type)).toEqual(["a", "like", "notice"]);
    expect(room.seq).toBe(102);
    expect(room.send({ type: "chat", text: "hi" })).toBe(true);
    expect(socket.sent[1]).toEqual({ type: "chat", text: "hi" });
  });

  test("after a drop it reconnects with backoff and resumes after the last applied seq", async () => {
    const { client, transport, timers } = setUp();
    stateRoute(transport, { seq: 100 });
    const events = [];
    const statuses = [];
    const room = client.connectRoom({ roomId: 3, onEvent: (e) => events.push(e), onStatus: (s) => statuses.push(s) });
    await room.ready;
    transport.socket.open();
    transport.socket.push({ seq: 105, type: "chat", id: 1, text: "before" });
    transport.socket.drop(1006);
    expect(room.send({ type: "chat", text: "lost" })).toBe(false);
    expect(statuses).toContain("reconnecting");
    expect(timers.pending).toHaveLength(1);
    expect(timers.pending[0].ms).toBeGreaterThanOrEqual(250);
    await timers.flush();
    expect(transport.sockets).toHaveLength(2);
    const again = transport.socket;
    again.open();
    expect(again.sent).toEqual([{ type: "resume", after_seq: 105 }]);
    // the server replays what was missed (one of them a duplicate) and goes on live
    again.push({ type: "batch", events: [{ seq: 105, type: "chat", id: 1, text: "before" }, { seq: 107, type: "chat", id: 2, text: "missed" }] });
    again.push({ seq: 110, type: "chat", id: 3, text: "live" });
    expect(events.map((e) => e.text)).toEqual(["before", "missed", "live"]);
    expect(statuses[statuses.length - 1]).toBe("open");
  });

  test("resync refetches state and applies events held meanwhile on top", async () => {
    const { client, transport } = setUp();
    let release;
    const gate = new Promise((resolve) => { release = resolve; });
    let calls = 0;
    transport.route("GET", "/api/v1/rooms/3/state", async () => {
      calls += 1;
      if (calls === 2) await gate;
      return { statusCode: 200, data: { seq: calls === 1 ? 10 : 500, n: calls } };
    });
    const events = [];
    const states = [];
    const room = client.connectRoom({ roomId: 3, onEvent: (e) => events.push(e), onState: (s) => states.push(s.n) });
    await room.ready;
    transport.socket.open();
    transport.socket.push({ type: "notice", code: "resync" });
    transport.socket.push({ seq: 400, type: "chat", text: "in the state already" });
    transport.socket.push({ seq: 501, type: "chat", text: "newer" });
    expect(events).toEqual([]);
    release();
    await settle();
    expect(states).toEqual([1, 2]);
    expect(events.map((e) => e.text)).toEqual(["newer"]);
  });

  test("4401 renews the token once and reconnects; 4403 ends it with a notice", async () => {
    const { client, transport } = setUp();
    stateRoute(transport, { seq: 1 });
    const events = [];
    const statuses = [];
    const room = client.connectRoom({ roomId: 3, onEvent: (e) => events.push(e), onStatus: (s) => statuses.push(s) });
    await room.ready;
    transport.socket.open();
    transport.socket.drop(4401);
    await settle();
    expect(transport.logins).toBe(2);
    expect(transport.socket.token).toBe("tok-2");
    transport.socket.open();
    transport.socket.drop(4403);
    await settle();
    expect(events).toEqual([{ type: "notice", code: "closed", close_code: 4403 }]);
    expect(statuses[statuses.length - 1]).toBe("closed");
    expect(transport.sockets).toHaveLength(2);
  });

  test("an unreachable host while fetching state is told and retried", async () => {
    const { client, transport, timers } = setUp();
    await client.ensureSession();
    let up = false;
    transport.route("GET", "/api/v1/rooms/3/state", () => (up ? { statusCode: 200, data: { seq: 5 } } : { errMsg: "request:fail" }));
    const events = [];
    const room = client.connectRoom({ roomId: 3, onEvent: (e) => events.push(e) });
    await settle();
    expect(events[0]).toMatchObject({ type: "notice", code: "offline", message: "无法连接服务器（live.example.com），请检查网络后重试" });
    up = true;
    await timers.flush();
    await room.ready;
    expect(transport.sockets).toHaveLength(1);
  });

  test("a room of another organisation (404) ends without a socket", async () => {
    const { client, transport } = setUp();
    transport.route("GET", "/api/v1/rooms/3/state", { statusCode: 404, data: { code: "not_found", message: "直播间不存在" } });
    const events = [];
    const room = client.connectRoom({ roomId: 3, onEvent: (e) => events.push(e) });
    await room.ready;
    expect(events).toEqual([{ type: "notice", code: "not_found", message: "直播间不存在" }]);
    expect(transport.sockets).toHaveLength(0);
  });

  test("close() stops reconnecting", async () => {
    const { client, transport, timers } = setUp();
    stateRoute(transport, { seq: 1 });
    const room = client.connectRoom({ roomId: 3 });
    await room.ready;
    const socket = transport.socket;
    socket.open();
    room.close();
    expect(socket.closedWith).toBe(1000);
    socket.drop(1000);
    await timers.flush();
    expect(transport.sockets).toHaveLength(1);
  });
});
