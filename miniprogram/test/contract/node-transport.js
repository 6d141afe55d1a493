// utils/client.js's transport in plain Node (fetch, WebSocket): the contract test runs the
// mini-program's own API/WebSocket module against a served backend with it. wx.login is
// played by handing out fresh codes, which the backend exchanges with its WeChat stub.

let codes = 0;

function nodeTransport({ codePrefix = "contract" } = {}) {
  const transport = {
    sockets: [],
    async request({ url, method, data, header, timeout }) {
      let response;
      try {
        response = await fetch(url, {
          method,
          headers: header,
          body: data === undefined || method === "GET" ? undefined : JSON.stringify(data),
          signal: AbortSignal.timeout(timeout || 10000),
        });
      } catch (error) {
        throw { errMsg: `request:fail ${error.name === "TimeoutError" ? "timeout" : error.message}` };
      }
      const text = await response.text();
      let body = text;
      try {
        body = text ? JSON.parse(text) : "";
      } catch (error) {
        /* not JSON: keep the text, like wx.request does */
      }
      return { statusCode: response.status, data: body, header: Object.fromEntries(response.headers) };
    },
    async login() {
      codes += 1;
      return `${codePrefix}-${process.pid}-${codes}`;
    },
    connectSocket(url) {
      const ws = new WebSocket(url);
      const task = {
        ws,
        onOpen: (cb) => ws.addEventListener("open", () => cb({})),
        onMessage: (cb) => ws.addEventListener("message", (event) => cb({ data: event.data })),
        onClose: (cb) => ws.addEventListener("close", (event) => cb({ code: event.code, reason: event.reason })),
        onError: (cb) => ws.addEventListener("error", () => cb({ errMsg: "socket error" })),
        send: (data) => ws.send(data),
        close: (code) => ws.close(code),
      };
      transport.sockets.push(task);
      return task;
    },
    async download({ url, header }) {
      const response = await fetch(url, { headers: header });
      const bytes = Buffer.from(await response.arrayBuffer());
      return { statusCode: response.status, tempFilePath: `memory:${bytes.length}`, header: Object.fromEntries(response.headers), bytes };
    },
  };
  return transport;
}

function memoryStorage() {
  const data = {};
  return { get: (k) => (k in data ? data[k] : null), set: (k, v) => { data[k] = v; }, remove: (k) => { delete data[k]; } };
}

module.exports = { nodeTransport, memoryStorage };
