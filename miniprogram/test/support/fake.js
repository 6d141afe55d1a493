// A fake transport, storage and timers for utils/client.js: the tests play the server.

class FakeSocket {
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.handlers = { open: [], message: [], close: [], error: [] };
    this.closedWith = undefined;
  }
  onOpen(cb) { this.handlers.open.push(cb); }
  onMessage(cb) { this.handlers.message.push(cb); }
  onClose(cb) { this.handlers.close.push(cb); }
  onError(cb) { this.handlers.error.push(cb); }
  send(data) { this.sent.push(JSON.parse(data)); }
  close(code) { this.closedWith = code; }
  // server side
  open() { this.handlers.open.forEach((cb) => cb({})); }
  push(frame) { this.handlers.message.forEach((cb) => cb({ data: JSON.stringify(frame) })); }
  drop(code = 1006) { this.handlers.close.forEach((cb) => cb({ code, reason: "" })); }
  fail() {
    this.handlers.error.forEach((cb) => cb({ errMsg: "socket error" }));
    this.handlers.close.forEach((cb) => cb({ code: 1006 }));
  }
  get token() { return decodeURIComponent(/token=([^&]+)/.exec(this.url)[1]); }
}

function fakeTransport() {
  let codes = 0;
  const transport = {
    requests: [],
    sockets: [],
    logins: 0,
    loginFails: false,
    routes: [],
    // route(method, path, answer) — answer: {statusCode, data} | (req) => that | Error-ish {errMsg}
    route(method, path, answer) {
      transport.routes.unshift({ method, path, answer });
      return transport;
    },
    async request(req) {
      transport.requests.push(req);
      const path = req.url.replace(/^[a-z]+:\/\/[^/]+/, "");
      const route = transport.routes.find((r) => r.method === req.method && (r.path instanceof RegExp ? r.path.test(path) : r.path === path));
      if (!route) return { statusCode: 404, data: { code: "not_found", message: "没有这个接口" } };
      const answer = typeof route.answer === "function" ? route.answer(req, path) : route.answer;
      if (answer && answer.errMsg) throw answer;
      await Promise.resolve();
      return answer;
    },
    async login() {
      transport.logins += 1;
      if (transport.loginFails) throw { errMsg: "login:fail" };
      codes += 1;
      return `code-${codes}`;
    },
    connectSocket(url) {
      const socket = new FakeSocket(url);
      transport.sockets.push(socket);
      return socket;
    },
    get socket() { return transport.sockets[transport.sockets.length - 1]; },
    async download({ url, header }) {
      transport.requests.push({ url, method: "DOWNLOAD", header });
      return { statusCode: 200, tempFilePath: "wxfile://tmp/poster.png", header: { "X-Invite-Code": "abcd1234" } };
    },
  };
  // Every login hands out a fresh token for contact 7 unless a test says otherwise.
  let tokens = 0;
  transport.route("POST", "/api/v1/viewer/session", () => {
    tokens += 1;
    return { statusCode: 201, data: { token: `tok-${tokens}`, contact_id: 7, guest_id: "", nickname: "微信用户7" } };
  });
  return transport;
}

function memoryStorage(initial = {}) {
  const data = { ...initial };
  return {
    data,
    get: (key) => (key in data ? data[key] : null),
    set: (key, value) => { data[key] = value; },
    remove: (key) => { delete data[key]; },
  };
}

// Timers the test runs by hand: nothing fires until flush().
function manualTimers() {
  let pending = [];
  let ids = 0;
  return {
    get pending() { return pending; },
    setTimeout(fn, ms) { ids += 1; pending.push({ id: ids, fn, ms }); return ids; },
    clearTimeout(id) { pending = pending.filter((t) => t.id !== id); },
    async flush() {
      const due = pending;
      pending = [];
      due.forEach((t) => t.fn());
      await settle();
    },
  };
}

async function settle() {
  for (let i = 0; i < 20; i += 1) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
  for (let i = 0; i < 20; i += 1) await Promise.resolve();
}

const config = { apiHost: "https://live.example.com", org: "demo", appid: "wxdemomp00000000", wechatAccount: null, subscribeTemplates: { liveStart: "TPL_LIVE" } };

module.exports = { fakeTransport, memoryStorage, manualTimers, settle, FakeSocket, config };
