import { api, subscribe, el, money, couponLabel } from "/static/viewer/api.js";
import { bindStaffSignIn } from "../shared/staff_sign_in.js";
import { t, pt, fmt, lang } from "../shared/i18n.js";

const $ = (id) => document.getElementById(id);
const STATUS = { scheduled: t("预告"), live: t("直播中"), ended: t("已结束") };
let token = sessionStorage.getItem("qm.staff");
let room = null;
let stream = null;
let statsTimer = null;
const coupons = new Map();

function show(id) {
  for (const section of ["login", "rooms", "room"]) $(section).hidden = section !== id;
}

function call(path, options = {}) {
  return api(path, { token, ...options }).catch((error) => {
    if (error.status === 401) {
      sessionStorage.removeItem("qm.staff");
      token = null;
      show("login");
    }
    throw error;
  });
}

// Field errors go under their field (the API's {"fields": {name: [message]}}); anything
// else into the form's error line.
function formError(id, error) {
  const line = $(id);
  line.classList.remove("ok");
  const form = line.closest("form");
  clearFieldErrors(form);
  const rest = [];
  for (const [name, messages] of Object.entries(error.fields || {})) {
    const input = form && form.querySelector(`[name="${CSS.escape(name)}"]`);
    const text = Array.isArray(messages) ? messages.join(t("，")) : String(messages);
    if (!input) { rest.push(text); continue; }
    input.setAttribute("aria-invalid", "true");
    const note = el("span", { class: "field-error", "data-error-for": name, text });
    (input.closest("label") || input).after(note);
  }
  line.textContent = rest.length ? rest.join(t("；")) : (Object.keys(error.fields || {}).length ? "" : error.message);
}

function clearFieldErrors(form) {
  if (!form) return;
  form.querySelectorAll(".field-error").forEach((node) => node.remove());
  form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

// A datetime-local value for "now" in the browser's time zone (the picker's lower bound).
function localNow() {
  const now = new Date();
  now.setSeconds(0, 0);
  return new Date(now.getTime() - now.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

bindStaffSignIn($("login-form"), $("login-error"), (signedIn) => {
  token = signedIn;
  loadRooms();
});

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem("qm.staff");
  token = null;
  show("login");
});

async function loadRooms() {
  show("rooms");
  $("room-form").elements.scheduled_start.min = localNow();
  const data = await call("/api/v1/rooms");
  const list = $("room-list");
  list.replaceChildren();
  for (const r of data.results) {
    const start = new Date(r.scheduled_start).toLocaleString(lang());
    const open = el("button", { text: t("进入"), "data-room": String(r.id) });
    open.addEventListener("click", () => openRoom(r.id));
    const item = el("li", { "data-room-item": String(r.id) },
      el("span", { class: `badge ${r.status}`, text: STATUS[r.status] || r.status }),
      el("span", { class: "grow", text: `${r.title} · ${start}` }));
    // A room whose start has passed without going live: say so rather than "预告".
    if (r.status === "scheduled" && new Date(r.scheduled_start) < Date.now()) {
      item.append(el("span", { class: "tag overdue", text: t("已过开播时间") }));
    }
    // 战报: the post-broadcast report, on its own page (static/console/report.js).
    const report = el("a", { class: "report-link", href: `/console/rooms/${r.id}/report/`, text: t("战报"), "data-report": String(r.id) });
    item.append(report, open);
    list.append(item);
  }
}

$("room-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const start = new Date(form.get("scheduled_start"));
    await call("/api/v1/rooms", {
      method: "POST",
      body: { title: form.get("title"), scheduled_start: start.toISOString() },
    });
    event.target.reset();
    clearFieldErrors(event.target);
    $("room-error").textContent = "";
    loadRooms();
  } catch (error) {
    formError("room-error", error);
  }
});

$("back").addEventListener("click", () => {
  if (stream) stream.close();
  clearInterval(statsTimer);
  room = null;
  loadRooms();
});

async function openRoom(id) {
  room = await call(`/api/v1/rooms/${id}`);
  show("room");
  renderRoomHeader();
  $("push-url").value = room.push_url || "";
  $("viewer-url").value = room.viewer_url || "";
  $("play-url").value = room.play_url || "";
  $("open-viewer").href = `/live/${room.id}/`;
  loadFollowQr();
  $("action-box").hidden = true;
  selected = null;
  await Promise.all([loadCatalog(), loadProducts(), loadCoupons(), loadDraws(), loadStats(), loadDesk()]);
  if (stream) stream.close();
  stream = await subscribe({
    roomId: room.id,
    token,
    onEvent,
    onState: (state) => {
      if (state && Array.isArray(state.chat)) { $("chat").replaceChildren(); state.chat.forEach(addChat); }
      if (state && state.announcement !== undefined) showAnnouncement(state.announcement);
      if (state && state.chat_settings) showSettings(state.chat_settings);
      // After a reconnect the socket may have missed queue and list changes: refetch them.
      if (state) { loadQueue().catch(() => {}); loadRestrictions().catch(() => {}); }
      if (state && state.online !== undefined) setOnline(state.online);
      loadProducts();
      loadCoupons();
    },
    onStatus: (s) => { $("ws-status").textContent = s === "open" ? t("● 实时") : s === "fallback" ? "" : t("○ 重连中"); },
  });
  clearInterval(statsTimer);
  // Stats are aggregates over the event log, not pushed events: refreshed on a slow timer.
  statsTimer = setInterval(loadStats, 10000);
}

let followQrUrl = null;

// The room's official-account QR; hidden when the organisation has no account (404) or
// WeChat is unavailable. Fetched with the token, shown through a blob URL.
async function loadFollowQr() {
  const box = $("follow-qr");
  box.hidden = true;
  if (followQrUrl) { URL.revokeObjectURL(followQrUrl); followQrUrl = null; }
  const roomId = room.id;
  try {
    const response = await fetch(`/api/v1/rooms/${roomId}/follow-qr`, {
      headers: { Authorization: `Token ${token}` },
    });
    if (!response.ok || !room || room.id !== roomId) return;
    followQrUrl = URL.createObjectURL(await response.blob());
    $("follow-qr-img").src = followQrUrl;
    box.hidden = false;
  } catch {
    box.hidden = true;
  }
}

function renderRoomHeader() {
  $("room-title").textContent = room.title;
  $("room-report").href = `/console/rooms/${room.id}/report/`;
  const badge = $("room-status");
  badge.textContent = STATUS[room.status] || room.status;
  badge.className = `badge ${room.status}`;
  $("go-live").disabled = room.status !== "scheduled";
  $("end-live").disabled = room.status === "ended";
}

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const input = $(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      input.select();
      document.execCommand("copy");
    }
    button.textContent = t("已复制");
    setTimeout(() => { button.textContent = t("复制"); }, 1500);
  });
}

$("cover-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = new FormData(event.target);
  const response = await fetch(`/api/v1/rooms/${room.id}/cover`, {
    method: "POST",
    headers: { Authorization: `Token ${token}` },
    body,
  });
  const data = await response.json().catch(() => ({}));
  $("cover-error").textContent = response.ok ? t("封面已更新") : (data.fields && data.fields.cover ? data.fields.cover.join(t("，")) : data.message || t("上传失败"));
});

$("go-live").addEventListener("click", async () => {
  room = await call(`/api/v1/rooms/${room.id}/start`, { method: "POST" });
  renderRoomHeader();
});
$("end-live").addEventListener("click", async () => {
  if (!confirm(t("确定结束直播？"))) return;
  room = await call(`/api/v1/rooms/${room.id}/end`, { method: "POST" });
  renderRoomHeader();
});

async function loadCatalog() {
  const data = await call("/api/v1/products?page_size=100");
  $("catalog").replaceChildren(...data.results.map((p) => el("option", { value: p.id, text: `${p.name} ${money(p.price)}` })));
}

$("add-product").addEventListener("submit", async (event) => {
  event.preventDefault();
  await call(`/api/v1/rooms/${room.id}/products`, { method: "POST", body: { product: Number($("catalog").value) } });
  loadProducts();
});

async function loadProducts() {
  const items = await call(`/api/v1/rooms/${room.id}/products`);
  $("products").replaceChildren(...items.map((item) => {
    const pin = el("button", {
      text: item.is_pinned ? t("取消讲解") : t("讲解"),
      class: item.is_pinned ? "ghost" : "",
      "data-pin": String(item.product),
    });
    pin.addEventListener("click", async () => {
      pin.disabled = true;
      try {
        await call(`/api/v1/rooms/${room.id}/products/${item.product}/pin`, { method: "POST", body: { pinned: !item.is_pinned } });
      } finally {
        loadProducts();
      }
    });
    return el("li", { class: item.is_pinned ? "pinned" : "" },
      el("span", { class: "grow", text: `${item.is_pinned ? t("【讲解中】") : ""}${item.name}` }),
      el("span", { class: "muted", text: money(item.price) }),
      pin);
  }));
}

$("coupon-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const until = new Date(Date.now() + Number(form.get("days") || 7) * 86400000);
  try {
    await call(`/api/v1/rooms/${room.id}/coupons`, {
      method: "POST",
      body: {
        name: form.get("name"),
        kind: form.get("kind"),
        amount: form.get("amount"),
        threshold: form.get("threshold") || "0",
        stock: Number(form.get("stock")),
        per_viewer_limit: Number(form.get("per_viewer_limit") || 1),
        valid_until: until.toISOString(),
      },
    });
    $("coupon-error").textContent = "";
    loadCoupons();
  } catch (error) {
    formError("coupon-error", error);
  }
});

async function loadCoupons() {
  const list = await call(`/api/v1/rooms/${room.id}/coupons`);
  coupons.clear();
  list.forEach((c) => coupons.set(c.id, c));
  renderCoupons();
}

function renderCoupons() {
  $("coupons").replaceChildren(...[...coupons.values()].map((c) => {
    const release = el("button", { text: c.released_at ? t("已发放") : t("发放"), disabled: !!c.released_at, "data-release": String(c.id) });
    release.addEventListener("click", async () => {
      release.disabled = true;
      await call(`/api/v1/coupons/${c.id}/release`, { method: "POST" });
      loadCoupons();
    });
    return el("li", {},
      el("span", { class: "grow", text: fmt(t("{name}（{label}）"), { name: c.name, label: couponLabel(c) }) }),
      el("span", { class: "muted", "data-remaining": String(c.id), text: fmt(t("剩余 {left}/{stock}"), { left: c.remaining, stock: c.stock }) }),
      release);
  }));
}

$("draw-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const draw = await call(`/api/v1/rooms/${room.id}/draws`, {
      method: "POST",
      body: {
        prize: form.get("prize"),
        winner_count: Number(form.get("winner_count")),
        eligibility: form.get("eligibility"),
        keyword: form.get("keyword") || "",
        min_minutes: Number(form.get("min_minutes") || 0),
      },
    });
    await call(`/api/v1/draws/${draw.id}/run`, { method: "POST" });
    $("draw-error").textContent = "";
    loadDraws();
  } catch (error) {
    formError("draw-error", error);
  }
});

async function loadDraws() {
  const draws = await call(`/api/v1/rooms/${room.id}/draws`);
  $("draws").replaceChildren(...draws.map((d) => {
    const names = d.winners.map((w) => w.nickname || `#${w.contact_id}`).join(t("、"));
    const text = d.ran_at
      ? fmt(t("{prize}：{winners}（{n} 人参与）"), { prize: d.prize, winners: names || t("无人符合条件"), n: d.candidates })
      : fmt(t("{prize}：未开奖"), { prize: d.prize });
    return el("li", {}, el("span", { class: "grow", text }));
  }));
}

const STAT_LABELS = [
  ["online", t("在线")], ["peak_online", t("峰值")], ["unique_viewers", t("观看人数")], ["avg_watch_seconds", t("人均时长(秒)")],
  ["likes", pt("room stats", "点赞")], ["chats", t("评论")], ["claims", t("领券")], ["new_leads", pt("room stats", "新线索")],
];

async function loadStats() {
  if (!room) return;
  const stats = await call(`/api/v1/rooms/${room.id}/stats`);
  $("stats").replaceChildren(...STAT_LABELS.map(([key, label]) =>
    el("div", {}, el("b", { text: String(stats[key] ?? 0), "data-stat": key }), el("span", { text: label }))));
  drawChart(stats.online_series || []);
}

function drawChart(series) {
  const canvas = $("online-chart");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#e4393c";
  ctx.lineWidth = 2;
  if (series.length < 2) {
    ctx.fillStyle = "#999";
    ctx.font = "14px sans-serif";
    ctx.fillText(t("开播后显示在线人数趋势"), 10, 80);
    return;
  }
  const max = Math.max(1, ...series.map((p) => p.online));
  ctx.beginPath();
  series.forEach((p, i) => {
    const x = (i / (series.length - 1)) * (canvas.width - 10) + 5;
    const y = canvas.height - 10 - (p.online / max) * (canvas.height - 20);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#666";
  ctx.fillText(fmt(t("峰值 {n}"), { n: max }), 8, 14);
}

// -- 场控: chat, pre-moderation queue, viewer actions, announcement, rules, words, audit ------
// Every action goes through the moderation APIs (each writes an audit row); the socket only
// tells this screen what happened so every open console stays in step.

const queue = new Map();
let selected = null;
let auditTimer = null;

const TAGS = {
  pending: ["pending", t("待审核")],
  shadow: ["shadow", t("仅作者可见")],
};

function chatBody(message) {
  // A message from the chat API (POST/GET) in the shape of a `chat` event.
  return {
    id: message.id,
    text: message.text,
    nickname: message.nickname,
    contact_id: message.contact,
    host: message.user !== null && message.user !== undefined,
    status: message.status,
    at: message.created_at,
  };
}

function modButton(text, handler, className = "") {
  const button = el("button", { type: "button", text, class: className });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await handler();
    } catch (error) {
      button.disabled = false;
      toastError(error);
    }
  });
  return button;
}

function toastError(error) {
  const line = $("host-chat-error");
  line.textContent = error.message || String(error);
  setTimeout(() => { if (line.textContent === (error.message || String(error))) line.textContent = ""; }, 5000);
}

const approve = (id) => call(`/api/v1/rooms/${room.id}/chat/${id}/approve`, { method: "POST" })
  .then((message) => { queue.delete(message.id); upsertChat(chatBody(message)); renderQueue(); scheduleAudit(); });
const remove = (id) => call(`/api/v1/rooms/${room.id}/chat/${id}/delete`, { method: "POST" })
  .then(() => { dropMessage(id); scheduleAudit(); });

function chatItem(event) {
  const status = event.status || "visible";
  const item = el("li", { "data-message": String(event.id || ""), "data-status": status, class: [status, event.host ? "host" : ""].join(" ").trim() });
  if (event.host) item.append(el("span", { class: "tag host", text: t("主播") }));
  if (TAGS[status]) item.append(el("span", { class: `tag ${TAGS[status][0]}`, text: TAGS[status][1] }));
  item.append(el("b", { text: event.nickname || t("观众") }), el("span", { class: "text", text: event.text || "" }));
  if (event.contact_id && event.id) {
    if (status === "pending") {
      item.append(
        modButton(t("通过"), () => approve(event.id), "ok"),
        modButton(t("拒绝"), () => remove(event.id)),
      );
    }
    const mute = modButton(t("禁言10分钟"), () => call(`/api/v1/rooms/${room.id}/moderation`, {
      method: "POST", body: { action: "mute", contact: event.contact_id, minutes: 10 },
    }).then(() => { loadRestrictions(); scheduleAudit(); }));
    const del = modButton(t("删除"), () => remove(event.id));
    const more = el("button", { type: "button", text: t("处置…"), class: "ghost", "data-act-on": String(event.id) });
    more.addEventListener("click", () => selectViewer(event));
    const acts = el("span", { class: "acts" });
    if (status === "pending") acts.append(...item.querySelectorAll("button"));
    else acts.append(mute, del);
    acts.append(more);
    item.append(acts);
  }
  return item;
}

function upsertChat(event) {
  if (!event || !event.id) return;
  const list = $("chat");
  const item = chatItem(event);
  const old = list.querySelector(`[data-message="${event.id}"]`);
  if (old) old.replaceWith(item); else list.append(item);
  if (event.status === "pending") { queue.set(event.id, event); renderQueue(); }
  else if (queue.delete(event.id)) renderQueue();
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

function addChat(event) { upsertChat(event); }

function dropMessage(id) {
  const node = $("chat").querySelector(`[data-message="${id}"]`);
  if (node) node.remove();
  if (queue.delete(Number(id))) renderQueue();
  if (selected && selected.id === Number(id)) selected.messageGone = true;
}

async function loadQueue() {
  const page = await call(`/api/v1/rooms/${room.id}/chat?status=pending&page_size=100`);
  queue.clear();
  for (const message of page.results.slice().reverse()) queue.set(message.id, chatBody(message));
  renderQueue();
}

function renderQueue() {
  $("queue-count").textContent = String(queue.size);
  $("queue").replaceChildren(...[...queue.values()].map((m) => el("li", { "data-queued": String(m.id) },
    el("b", { text: m.nickname || t("观众") }),
    el("span", { class: "grow", text: m.text }),
    modButton(t("通过"), () => approve(m.id), "ok"),
    modButton(t("拒绝"), () => remove(m.id)))));
}

function selectViewer(event) {
  selected = { id: event.id, contact: event.contact_id, nickname: event.nickname };
  $("action-who").textContent = event.nickname || fmt(t("观众 #{id}"), { id: event.contact_id });
  $("action-text").textContent = event.text ? `“${event.text}”` : "";
  $("action-error").textContent = "";
  $("action-box").hidden = false;
  $("action-box").scrollIntoView({ block: "nearest" });
}

$("action-form").addEventListener("click", async (event) => {
  const button = event.target.closest("[data-act]");
  if (!button || !selected) return;
  if (button.dataset.act === "close") { $("action-box").hidden = true; selected = null; return; }
  const form = new FormData($("action-form"));
  const minutes = Number(form.get("minutes") || 0);
  const body = {
    action: button.dataset.act,
    reason: form.get("reason") || "",
    org_wide: form.get("org_wide") === "on",
  };
  // Device and IP come from the message (the server has them); without it, the contact.
  if (selected.id && !selected.messageGone) {
    body.message = selected.id;
    body.by_device = button.dataset.act === "ban" && form.get("by_device") === "on";
    body.by_ip = button.dataset.act === "ban" && form.get("by_ip") === "on";
  } else {
    body.contact = selected.contact;
  }
  if (minutes > 0) body.minutes = minutes;
  try {
    await call(`/api/v1/rooms/${room.id}/moderation`, { method: "POST", body });
    $("action-box").hidden = true;
    selected = null;
    loadRestrictions();
    scheduleAudit();
  } catch (error) {
    formError("action-error", error);
  }
});

$("host-chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.elements.text;
  try {
    const message = await call(`/api/v1/rooms/${room.id}/chat`, { method: "POST", body: { text: input.value } });
    input.value = "";
    $("host-chat-error").textContent = "";
    upsertChat(chatBody(message));
  } catch (error) {
    formError("host-chat-error", error);
  }
});

function showAnnouncement(text) {
  const current = $("announcement-current");
  current.textContent = text ? fmt(t("当前公告：{text}"), { text }) : "";
  current.hidden = !text;
}

async function postAnnouncement(text) {
  try {
    const data = await call(`/api/v1/rooms/${room.id}/announcement`, { method: "POST", body: { text } });
    showAnnouncement(data.text);
    $("announcement-error").textContent = "";
    scheduleAudit();
    return true;
  } catch (error) {
    formError("announcement-error", error);
    return false;
  }
}

$("announcement-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = event.target.elements.text.value.trim();
  if (!text) { $("announcement-error").textContent = t("请填写公告内容"); return; }
  if (await postAnnouncement(text)) event.target.reset();
});
$("announcement-clear").addEventListener("click", () => postAnnouncement(""));

const SETTING_FIELDS = ["viewer_interval_seconds", "slow_mode_seconds", "new_viewer_minutes"];

function showSettings(settings) {
  const form = $("settings-form");
  for (const name of SETTING_FIELDS) {
    if (settings[name] !== undefined) form.elements[name].value = settings[name];
  }
  if (settings.premoderation !== undefined) form.elements.premoderation.checked = !!settings.premoderation;
  const modes = [];
  if (form.elements.premoderation.checked) modes.push(t("先审后发"));
  const slow = Number(form.elements.slow_mode_seconds.value || 0);
  if (slow) modes.push(fmt(t("慢速 {n} 秒"), { n: slow }));
  $("chat-mode").textContent = modes.join(" · ");
}

async function loadChatSettings() {
  const settings = await call(`/api/v1/rooms/${room.id}/chat-settings`);
  showSettings(settings);
  showAnnouncement(settings.announcement || "");
}

$("settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { premoderation: form.elements.premoderation.checked };
  for (const name of SETTING_FIELDS) body[name] = Number(form.elements[name].value || 0);
  try {
    showSettings(await call(`/api/v1/rooms/${room.id}/chat-settings`, { method: "PATCH", body }));
    clearFieldErrors(form);
    $("settings-error").textContent = t("已保存");
    $("settings-error").classList.add("ok");
    scheduleAudit();
  } catch (error) {
    formError("settings-error", error);
  }
});

const KIND = { mute: t("禁言"), ban: t("拉黑"), shadow: t("隐身禁言") };

async function loadRestrictions() {
  if (!room) return;
  const items = await call(`/api/v1/rooms/${room.id}/moderation`);
  $("restrictions").replaceChildren(...(items.length ? items.map((r) => {
    const parts = [KIND[r.kind] || r.kind];
    parts.push(r.until ? fmt(t("至 {time}"), { time: new Date(r.until).toLocaleString(lang()) }) : t("永久"));
    if (r.by_device) parts.push(t("含设备"));
    if (r.by_ip) parts.push(t("含IP"));
    if (r.org_wide) parts.push(t("所有直播间"));
    if (r.reason) parts.push(r.reason);
    const item = el("li", { "data-restriction": String(r.id), "data-kind": r.kind },
      el("b", { text: r.contact_nickname || (r.contact ? `#${r.contact}` : t("设备/IP")) }),
      el("span", { class: "grow muted", text: parts.join(" · ") }));
    if (r.contact) {
      item.append(modButton(t("解除"), () => call(`/api/v1/rooms/${room.id}/moderation`, {
        method: "POST", body: { action: `un${r.kind}`, contact: r.contact },
      }).then(() => { loadRestrictions(); scheduleAudit(); }), "ghost"));
    }
    return item;
  }) : [el("li", { class: "muted", text: t("无人被禁言或拉黑") })]));
}

async function loadWords() {
  const words = await call("/api/v1/sensitive-words");
  $("words").replaceChildren(...words.map((w) => el("li", { "data-word": String(w.id) },
    el("code", { class: "grow", text: w.pattern }),
    el("span", { class: "tag", text: w.is_regex ? t("正则") : t("词") }),
    el("span", { class: "tag", text: w.action === "mask" ? t("替换为*") : t("拒绝发送") }),
    modButton(t("删除"), () => call(`/api/v1/sensitive-words/${w.id}`, { method: "DELETE" })
      .then(() => { loadWords(); scheduleAudit(); }), "ghost"))));
}

$("word-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await call("/api/v1/sensitive-words", {
      method: "POST",
      body: { pattern: form.elements.pattern.value, is_regex: form.elements.is_regex.checked, action: form.elements.action.value },
    });
    form.reset();
    clearFieldErrors(form);
    $("word-error").textContent = "";
    loadWords();
    scheduleAudit();
  } catch (error) {
    formError("word-error", error);
  }
});

const AUDIT = {
  "chat.mute": t("禁言"),
  "chat.unmute": t("解除禁言"),
  "chat.ban": t("拉黑"),
  "chat.unban": t("解除拉黑"),
  "chat.shadow": t("隐身禁言"),
  "chat.unshadow": t("解除隐身禁言"),
  "chat.delete": t("删除消息"),
  "chat.approve": t("通过消息"),
  "chat.settings": t("修改发言规则"),
  "chat.announcement": t("发布公告"),
  "chat.word_add": t("添加敏感词"),
  "chat.word_delete": t("删除敏感词"),
};

function auditText(entry) {
  const d = entry.detail || {};
  let what = AUDIT[entry.action] || entry.action;
  if (entry.action === "chat.delete" && d.was === "pending") what = t("拒绝消息");
  if (entry.action === "chat.announcement" && !d.text) what = t("撤下公告");
  const parts = [what];
  if (entry.target_name) parts.push(entry.target_name);
  if (d.minutes) parts.push(fmt(t("{n} 分钟"), { n: d.minutes }));
  if (d.by_device) parts.push(t("含设备"));
  if (d.by_ip) parts.push(t("含IP"));
  if (d.org_wide) parts.push(t("所有直播间"));
  if (d.text) parts.push(`“${d.text}”`);
  if (d.pattern) parts.push(d.pattern);
  if (entry.action === "chat.settings") {
    if (d.premoderation !== undefined) parts.push(d.premoderation ? t("先审后发：开") : t("先审后发：关"));
    if (d.slow_mode_seconds !== undefined) parts.push(fmt(t("慢速 {n} 秒"), { n: d.slow_mode_seconds }));
    if (d.viewer_interval_seconds !== undefined) parts.push(fmt(t("发言间隔 {n} 秒"), { n: d.viewer_interval_seconds }));
  }
  if (d.reason) parts.push(d.reason);
  return parts.join(" · ");
}

async function loadAudit() {
  if (!room) return;
  const entries = await call(`/api/v1/rooms/${room.id}/moderation-log`);
  $("audit").replaceChildren(...(entries.length ? entries.map((e) => el("li", { "data-audit": e.action },
    el("time", { text: new Date(e.created_at).toLocaleTimeString(lang()) }),
    el("b", { text: e.actor_name || t("系统") }),
    el("span", { class: "grow", text: auditText(e) }))) : [el("li", { class: "muted", text: t("还没有操作记录") })]));
}

// Several actions in a row (or the same one seen on the socket) refresh the log once.
function scheduleAudit() {
  clearTimeout(auditTimer);
  auditTimer = setTimeout(() => loadAudit().catch(() => {}), 150);
}

function onModeration(event) {
  if (event.action === "delete") dropMessage(event.message_id);
  else if (event.action === "settings") showSettings(event);
  else loadRestrictions();
  scheduleAudit();
}

function loadDesk() {
  return Promise.all([loadChatSettings(), loadQueue(), loadRestrictions(), loadWords(), loadAudit()]);
}

function setOnline(count) {
  const node = document.querySelector('[data-stat="online"]');
  if (node) node.textContent = String(count ?? "");
}

function onEvent(event) {
  switch (event.type) {
    case "chat": addChat(event); break;
    case "moderation": onModeration(event); break;
    case "announcement": showAnnouncement(event.text || ""); scheduleAudit(); break;
    case "coupon.stock": {
      const c = coupons.get(event.coupon);
      if (c) { c.remaining = event.remaining; renderCoupons(); }
      break;
    }
    case "coupon.released": loadCoupons(); break;
    case "product.pinned": loadProducts(); break;
    case "draw.result": loadDraws(); break;
    case "room.status": room.status = event.status; renderRoomHeader(); break;
    case "online": setOnline(event.count); break;
    case "like": {
      const node = document.querySelector('[data-stat="likes"]');
      if (node) node.textContent = String(event.count);
      break;
    }
    default: break;
  }
}

if (token) loadRooms().catch(() => show("login")); else show("login");
