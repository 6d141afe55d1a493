// The one API + WebSocket module every page of the mini-program uses (docs/realtime.md is
// the protocol; static/shared/ws.js is the H5 page's twin of connectRoom below).
//
//   const client = createClient({ config, transport, storage });
//   await client.ensureSession({ room, invite });      // wx.login → POST /api/v1/viewer/session
//   const room = await client.api(`/api/v1/rooms/${id}/public`);
//   const live = client.connectRoom({ roomId, onState, onEvent, onStatus });
//   live.send({ type: "chat", text: "想要 3 号链接" });
//
// Nothing here touches `wx` directly: a transport does (utils/wx-transport.js in the app, a
// fake one in the jest tests, a Node one in the contract test), so the same code runs in
// all three.
//
// Session: the viewer token is kept in storage per organisation and renewed before it
// expires (the server signs it for VIEWER_TOKEN_MAX_AGE, 12 h; we renew after 10 h) and
// whenever the server answers 401 or closes the socket with 4401 — once, then the error
// stands. One login runs at a time: concurrent callers wait for the same one (wx.login
// codes are single-use).
//
// Errors: every failure is an ApiError with a `code` and a Chinese `message` a page can
// show as is — "network" when the API host cannot be reached, "timeout", "server_error"
// for 5xx, else the server's own {"code", "message", "fields"}.

const SESSION_TTL_MS = 10 * 3600 * 1000;
const REQUEST_TIMEOUT_MS = 10000;
const MAX_BACKOFF_MS = 15000;
// Close codes after which reconnecting cannot help (docs/realtime.md): refused origin or
// banned, not this organisation's room. 4401 (bad or expired token) gets one renewal first.
const FINAL_CLOSE_CODES = [4403, 4404];

class ApiError extends Error {
  constructor({ code, message, status = 0, fields = {} }) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.fields = fields || {};
  }
}

function hostOf(url) {
  const match = /^[a-z]+:\/\/([^/]+)/i.exec(url || "");
  return match ? match[1] : url;
}

function socketBase(apiHost) {
  return apiHost.replace(/^http(s?):\/\//i, (_, s) => (s ? "wss://" : "ws://")).replace(/\/+$/, "");
}

function errorFromFailure(failure, apiHost) {
  const text = String((failure && (failure.errMsg || failure.message)) || failure || "");
  if (/timeout|timed out/i.test(text)) {
    return new ApiError({ code: "timeout", message: "服务器响应超时，请稍后重试" });
  }
  return new ApiError({
    code: "network",
    message: `无法连接服务器（${hostOf(apiHost)}），请检查网络后重试`,
  });
}

function errorFromResponse(response) {
  const body = response.data && typeof response.data === "object" ? response.data : {};
  if (response.statusCode >= 500) {
    return new ApiError({
      code: body.code || "server_error",
      status: response.statusCode,
      message: "服务器开小差了，请稍后再试",
    });
  }
  return new ApiError({
    code: body.code || `http_${response.statusCode}`,
    status: response.statusCode,
    message: body.message || `请求失败（HTTP ${response.statusCode}）`,
    fields: body.fields,
  });
}

// "Equal jitter": half fixed, half random, so a room full of viewers dropped at once does
// not come back in one wave.
function backoff(attempt, random) {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
  return base / 2 + random() * (base / 2);
}

function createClient({
  config,
  transport,
  storage,
  now = () => Date.now(),
  random = Math.random,
  timers = { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (t) => clearTimeout(t) },
}) {
  const apiHost = config.apiHost.replace(/\/+$/, "");
  const sessionKey = `qm.session.${config.org}`;
  let loggingIn = null;

  function savedSession() {
    const saved = storage.get(sessionKey);
    return saved && saved.token ? saved : null;
  }

  function storeSession(session) {
    storage.set(sessionKey, session);
    return session;
  }

  async function rawRequest({ path, method = "GET", data, token }) {
    const header = { Accept: "application/json" };
    if (token) header.Authorization = `Token ${token}`;
    if (data !== undefined) header["Content-Type"] = "application/json";
    let response;
    try {
      response = await transport.request({
        url: `${apiHost}${path}`,
        method,
        data,
        header,
        timeout: REQUEST_TIMEOUT_MS,
      });
    } catch (failure) {
      throw errorFromFailure(failure, apiHost);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response.data;
    throw errorFromResponse(response);
  }

  // wx.login → a single-use code → the viewer's token for this organisation.
  async function login({ room, invite } = {}) {
    if (loggingIn) return loggingIn;
    loggingIn = (async () => {
      let code;
      try {
        code = await transport.login();
      } catch (failure) {
        throw new ApiError({ code: "login_failed", message: "微信登录失败，请稍后重试" });
      }
      const body = { org: config.org, mp_code: code };
      if (room) body.room = Number(room);
      if (invite) body.invite = String(invite);
      if (config.wechatAccount) body.wechat_account = config.wechatAccount;
      const data = await rawRequest({ path: "/api/v1/viewer/session", method: "POST", data: body });
      const previous = savedSession() || {};
      return storeSession({
        token: data.token,
        contact_id: data.contact_id,
        nickname: data.nickname || previous.nickname || "",
        phone_bound: previous.contact_id === data.contact_id ? !!previous.phone_bound : false,
        expires_at: now() + SESSION_TTL_MS,
      });
    })();
    try {
      return await loggingIn;
    } finally {
      loggingIn = null;
    }
  }

  async function ensureSession(options = {}) {
    const saved = savedSession();
    if (saved && saved.expires_at > now()) return saved;
    return login(options);
  }

  function dropSession() {
    storage.remove(sessionKey);
  }

  // A call with the viewer's token; one renewal on 401 (expired or revoked token).
  async function api(path, { method = "GET", data, auth = true } = {}) {
    if (!auth) return rawRequest({ path, method, data });
    const session = await ensureSession();
    try {
      return await rawRequest({ path, method, data, token: session.token });
    } catch (error) {
      if (error.status !== 401) throw error;
      dropSession();
      const renewed = await login();
      return rawRequest({ path, method, data, token: renewed.token });
    }
  }

  // A binary file with the viewer's token (the invite poster): {tempFilePath, header}.
  async function download(path) {
    const fetchOnce = async (token) => {
      let file;
      try {
        file = await transport.download({ url: `${apiHost}${path}`, header: { Authorization: `Token ${token}` } });
      } catch (failure) {
        throw errorFromFailure(failure, apiHost);
      }
      if (file.statusCode === 200) return { tempFilePath: file.tempFilePath, header: file.header || {} };
      throw new ApiError({
        code: file.statusCode === 401 ? "not_authenticated" : `http_${file.statusCode}`,
        status: file.statusCode,
        message: file.statusCode >= 500 ? "服务器开小差了，请稍后再试" : `下载失败（HTTP ${file.statusCode}）`,
      });
    };
    const session = await ensureSession();
    try {
      return await fetchOnce(session.token);
    } catch (error) {
      if (error.status !== 401) throw error;
      dropSession();
      return fetchOnce((await login()).token);
    }
  }

  // After phone binding the server may hand out a token for the merged contact; after
  // naming oneself, a token carrying the new nickname (chat takes it from the token).
  function adoptToken({ token, contact_id, phone_bound, nickname }) {
    const saved = savedSession() || {};
    return storeSession({
      ...saved,
      token,
      contact_id: contact_id === undefined ? saved.contact_id : contact_id,
      nickname: nickname === undefined ? saved.nickname : nickname,
      phone_bound: phone_bound === undefined ? saved.phone_bound : phone_bound,
      expires_at: now() + SESSION_TTL_MS,
    });
  }

  // --- the room's event stream --------------------------------------------------------------
  // State first (GET /rooms/{id}/state → onState), then the socket; {"type":"resume"} with the
  // last applied seq on every open, so nothing published between the state read and the
  // socket's attach — or during a drop — is lost; events at or below the last seq are
  // duplicates and dropped; "resync" refetches state (events meanwhile are held and applied
  // on top). onStatus: "connecting" | "open" | "reconnecting" | "closed".
  function connectRoom({ roomId, onEvent = () => {}, onState = () => {}, onStatus = () => {} }) {
    let socket = null; // the open socket (send goes here)
    let current = null; // the socket being opened or open (close goes here)
    let lastSeq = null;
    let attempt = 0;
    let closed = false;
    let loading = false;
    let held = [];
    let fetching = null;
    let refetch = false;
    let timer = null;
    let renewedAfter4401 = false;

    function finish(notice) {
      closed = true;
      timers.clearTimeout(timer);
      if (notice) onEvent(notice);
      onStatus("closed");
    }

    function apply(event) {
      if (event.seq === undefined || event.seq === null) {
        onEvent(event);
        return;
      }
      if (lastSeq === null || loading) {
        held.push(event);
        return;
      }
      if (event.seq <= lastSeq) return;
      lastSeq = event.seq;
      onEvent(event);
    }

    async function fetchState() {
      if (fetching) {
        refetch = true; // the fetch in flight may predate what we missed
        return fetching;
      }
      loading = true;
      fetching = (async () => {
        for (;;) {
          if (closed) return;
          try {
            const state = await api(`/api/v1/rooms/${roomId}/state`);
            lastSeq = state.seq;
            loading = false;
            onState(state);
            const pending = held;
            held = [];
            pending.forEach(apply);
            return;
          } catch (error) {
            if ([401, 403, 404].includes(error.status)) {
              loading = false;
              finish({ type: "notice", code: error.code || "forbidden", message: error.message });
              return;
            }
            // Host unreachable or the hub restarting (503): say so, keep trying.
            onEvent({ type: "notice", code: "offline", message: error.message });
            await new Promise((resolve) => {
              timer = timers.setTimeout(resolve, backoff(attempt++, random));
            });
          }
        }
      })();
      try {
        await fetching;
      } finally {
        fetching = null;
      }
      if (refetch && !closed) {
        refetch = false;
        await fetchState();
      }
    }

    function handle(message) {
      if (!message || typeof message !== "object") return;
      if (message.type === "batch") {
        (message.events || []).forEach(apply);
        return;
      }
      if (message.type === "hello" || message.type === "pong") return;
      if (message.type === "notice" && message.code === "resync") {
        fetchState();
        return;
      }
      if (message.type === "notice" && message.code === "resumed") return;
      apply(message);
    }

    async function open() {
      if (closed) return;
      onStatus(attempt === 0 ? "connecting" : "reconnecting");
      let session;
      try {
        session = await ensureSession();
      } catch (error) {
        onEvent({ type: "notice", code: "offline", message: error.message });
        scheduleReconnect();
        return;
      }
      if (closed) return;
      const url = `${socketBase(apiHost)}/ws/rooms/${roomId}/?token=${encodeURIComponent(session.token)}`;
      const task = transport.connectSocket(url);
      let done = false; // onError and onClose may both fire for one socket
      current = task;
      task.onOpen(() => {
        if (closed || done) return;
        socket = task;
        attempt = 0;
        onStatus("open");
        if (lastSeq !== null) task.send(JSON.stringify({ type: "resume", after_seq: lastSeq }));
      });
      task.onMessage((msg) => {
        let data;
        try {
          data = JSON.parse(msg.data);
        } catch (err) {
          return;
        }
        handle(data);
      });
      const dropped = (code) => {
        if (done) return;
        done = true;
        if (socket === task) socket = null;
        if (current === task) current = null;
        if (closed) return;
        if (FINAL_CLOSE_CODES.includes(code)) {
          finish({ type: "notice", code: "closed", close_code: code });
          return;
        }
        if (code === 4401) {
          if (renewedAfter4401) {
            finish({ type: "notice", code: "closed", close_code: code });
            return;
          }
          // The token expired while watching: a fresh login, then straight back in.
          renewedAfter4401 = true;
          dropSession();
          login()
            .then(() => open())
            .catch((error) => {
              onEvent({ type: "notice", code: "offline", message: error.message });
              scheduleReconnect();
            });
          return;
        }
        scheduleReconnect();
      };
      task.onClose((event) => dropped(event && event.code));
      task.onError(() => dropped(null));
    }

    function scheduleReconnect() {
      if (closed) return;
      onStatus("reconnecting");
      timer = timers.setTimeout(() => {
        open();
      }, backoff(attempt++, random));
    }

    const ready = fetchState().then(() => {
      if (!closed) return open();
      return undefined;
    });

    return {
      ready,
      send(obj) {
        if (!socket || closed) return false;
        try {
          socket.send(JSON.stringify(obj));
          return true;
        } catch (err) {
          return false;
        }
      },
      close() {
        if (closed) return;
        closed = true;
        timers.clearTimeout(timer);
        const task = current;
        socket = null;
        current = null;
        if (task) task.close(1000);
        onStatus("closed");
      },
      get seq() {
        return lastSeq;
      },
    };
  }

  return {
    config,
    api,
    download,
    login,
    ensureSession,
    dropSession,
    adoptToken,
    session: savedSession,
    connectRoom,
    url: (path) => `${apiHost}${path}`,
  };
}

module.exports = { createClient, ApiError, socketBase, backoff };
