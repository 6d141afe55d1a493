import { api, subscribe, el, money, couponLabel } from "/static/viewer/api.js";
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

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const data = await api("/api/v1/auth/token", {
      method: "POST",
      body: { username: form.get("username"), password: form.get("password") },
    });
    token = data.token;
    sessionStorage.setItem("qm.staff", token);
    loadRooms();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
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
    list.append(
      el("li", {},
        el("span", { class: `badge ${r.status}`, text: STATUS[r.status] || r.status }),
        el("span", { class: "grow", text: `${r.title} · ${start}` }),
        open),
    );
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
  await Promise.all([loadCatalog(), loadProducts(), loadCoupons(), loadDraws(), loadStats()]);
  if (stream) stream.close();
  stream = await subscribe({
    roomId: room.id,
    token,
    onEvent,
    onState: (state) => {
      if (state && Array.isArray(state.chat)) { $("chat").replaceChildren(); state.chat.forEach(addChat); }
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

function addChat(event) {
  const item = el("li", { "data-message": String(event.id || "") },
    el("b", { text: event.nickname || t("观众") }), el("span", { class: "grow", text: event.text || "" }));
  if (event.contact_id && event.id) {
    // Moderation goes through the hub's API (audited); the socket only carries chat.
    const mute = el("button", { text: t("禁言10分钟") });
    mute.addEventListener("click", () => call(`/api/v1/rooms/${room.id}/moderation`, {
      method: "POST", body: { action: "mute", contact: event.contact_id, minutes: 10 },
    }).then(() => { mute.disabled = true; }));
    const del = el("button", { text: t("删除") });
    del.addEventListener("click", () => call(`/api/v1/rooms/${room.id}/chat/${event.id}/delete`, { method: "POST" })
      .then(() => item.remove()));
    item.append(mute, del);
  }
  const list = $("chat");
  list.append(item);
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

function setOnline(count) {
  const node = document.querySelector('[data-stat="online"]');
  if (node) node.textContent = String(count ?? "");
}

function onEvent(event) {
  switch (event.type) {
    case "chat": addChat(event); break;
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
