// The one real-time client every page uses (docs/realtime.md).
//
//   const room = connectRoom({roomId, token, onEvent, onState, onStatus});
//   room.send({type: "chat", text: "你好"}); room.send({type: "like", count: 3});
//   room.close();
//
// It fetches GET /api/v1/rooms/{id}/state (onState(state)), opens WS /ws/rooms/{id}/,
// asks the server for what happened after the state's seq ({"type":"resume"}), holds what
// arrives until the server's "resumed" notice ends the answer, then applies every event
// whose seq is newer than what it has seen, in seq order (onEvent(event), batches
// unpacked, duplicates dropped), reconnects after drops with exponential backoff + jitter
// and resumes from its last seq — or refetches state when the server says it is too far
// behind ({"type":"notice","code":"resync"}). Notices (errors for the sender: muted,
// rate_limited, …) and events without a seq reach onEvent as they are.
// onStatus(s): "connecting" | "open" | "reconnecting" | "closed".
//
// Chat text is data: render it with textContent, never innerHTML.

const MAX_BACKOFF_MS = 15000;

function wsUrl(path, token) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}?token=${encodeURIComponent(token)}`;
}

function backoff(attempt) {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2); // "equal jitter": spreads a reconnect storm
}

export function connectRoom({ roomId, token, onEvent = () => {}, onState = () => {}, onStatus = () => {} }) {
  let socket = null;
  let lastSeq = null; // null until the first state arrives
  let attempt = 0;
  let closed = false;
  let fetching = null;
  let loading = false; // a state fetch is in flight: hold events until it lands
  let held = []; // events received while a state fetch is in flight
  let resuming = null; // events received between a resume request and its "resumed" answer
  let timer = null;

  let refetch = false; // a resync arrived while a fetch was in flight

  async function fetchState() {
    if (fetching) {
      refetch = true; // the fetch in flight may predate what we missed
      return fetching;
    }
    loading = true;
    fetching = (async () => {
      for (;;) {
        try {
          const response = await fetch(`/api/v1/rooms/${roomId}/state`, {
            headers: { Authorization: `Token ${token}` },
          });
          if (response.status === 401 || response.status === 403 || response.status === 404) {
            const body = await response.json().catch(() => ({}));
            loading = false;
            onEvent({ type: "notice", code: body.code || "forbidden", message: body.message });
            closed = true;
            onStatus("closed");
            return;
          }
          if (!response.ok) throw new Error(`state ${response.status}`);
          const state = await response.json();
          lastSeq = state.seq;
          loading = false;
          onState(state);
          const pending = held;
          held = [];
          pending.forEach(apply);
          return;
        } catch (err) {
          if (closed) return;
          await new Promise((resolve) => setTimeout(resolve, backoff(attempt++)));
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

  function apply(event) {
    if (event.seq === undefined || event.seq === null) {
      onEvent(event);
      return;
    }
    if (lastSeq === null || loading) {
      held.push(event);
      return;
    }
    if (resuming !== null) {
      // A live frame can overtake the resume answer (it reached the new socket before the
      // request did); applying it first would make the answer's older events look seen.
      resuming.push(event);
      return;
    }
    if (event.seq <= lastSeq) return; // already in the state or seen
    lastSeq = event.seq;
    onEvent(event);
  }

  function finishResume() {
    if (resuming === null) return;
    const got = resuming.sort((a, b) => a.seq - b.seq);
    resuming = null;
    got.forEach(apply);
  }

  function handle(message) {
    if (message.type === "batch") {
      message.events.forEach(apply);
      return;
    }
    if (message.type === "hello") return;
    if (message.type === "notice" && message.code === "resync") {
      finishResume();
      fetchState();
      return;
    }
    if (message.type === "notice" && message.code === "resumed") {
      finishResume();
      return;
    }
    apply(message);
  }

  function open() {
    if (closed) return;
    onStatus(attempt === 0 ? "connecting" : "reconnecting");
    socket = new WebSocket(wsUrl(`/ws/rooms/${roomId}/`, token));
    socket.onopen = () => {
      attempt = 0;
      onStatus("open");
      if (lastSeq !== null) {
        resuming = [];
        socket.send(JSON.stringify({ type: "resume", after_seq: lastSeq }));
      }
    };
    socket.onmessage = (msg) => {
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch {
        return;
      }
      handle(data);
    };
    socket.onclose = (ev) => {
      socket = null;
      resuming = null; // the next connection asks again from lastSeq
      if (closed) return;
      if (ev.code === 4401 || ev.code === 4403 || ev.code === 4404) {
        // Bad token, refused origin, banned, or not this organisation's room: do not retry.
        closed = true;
        onEvent({ type: "notice", code: "closed", close_code: ev.code });
        onStatus("closed");
        return;
      }
      onStatus("reconnecting");
      timer = setTimeout(open, backoff(attempt++));
    };
  }

  fetchState().then(open);

  return {
    send(obj) {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(obj));
        return true;
      }
      return false;
    },
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close(1000);
      onStatus("closed");
    },
    get seq() {
      return lastSeq;
    },
  };
}

export function connectStaff({ token, onEvent = () => {}, onStatus = () => {} }) {
  let socket = null;
  let attempt = 0;
  let closed = false;
  let timer = null;

  function open() {
    if (closed) return;
    socket = new WebSocket(wsUrl("/ws/staff/", token));
    socket.onopen = () => {
      attempt = 0;
      onStatus("open");
    };
    socket.onmessage = (msg) => {
      try {
        const data = JSON.parse(msg.data);
        if (data.type !== "hello" && data.type !== "pong") onEvent(data);
      } catch {
        /* ignore */
      }
    };
    socket.onclose = (ev) => {
      socket = null;
      if (closed) return;
      if (ev.code === 4401 || ev.code === 4403) {
        closed = true;
        onStatus("closed");
        return;
      }
      onStatus("reconnecting");
      timer = setTimeout(open, backoff(attempt++));
    };
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close(1000);
      onStatus("closed");
    },
  };
}
