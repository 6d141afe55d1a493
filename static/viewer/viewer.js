import { api, subscribe, el, money, couponLabel } from "/static/viewer/api.js";
import { viewerSession, sessionUpdate } from "/static/viewer/session.js";
import { askPhone } from "/static/viewer/phone.js";
import { createChat } from "/static/viewer/chat.js";
import { t, tn, fmt } from "../shared/i18n.js";

const $ = (id) => document.getElementById(id);
const root = $("viewer");
const roomId = Number(root.dataset.room);
const mode = root.dataset.mode; // live | replay | clip
const clipId = root.dataset.clip ? Number(root.dataset.clip) : null;
const STATUS = { scheduled: t("预告"), live: t("直播中"), ended: t("已结束") };

let session = null;
let state = null;
let chat = null;
let stream = null;
let likes = 0;
let pendingLikes = 0;
const coupons = new Map();
const claimed = new Map(); // coupon id → code

function toast(text) {
  const node = $("toast");
  node.textContent = text;
  node.classList.add("on");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => node.classList.remove("on"), 2500);
}

function call(path, options = {}) {
  return api(path, { token: session.token, ...options });
}

// --- tabs ---------------------------------------------------------------------------------
for (const button of document.querySelectorAll(".tabs button")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tabs button")) other.classList.toggle("on", other === button);
    for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== button.dataset.tab;
  });
}

// --- player -------------------------------------------------------------------------------
function play(url, { start = 0, end = null } = {}) {
  const video = $("player");
  const begin = () => {
    if (start) video.currentTime = start;
    video.play().catch(() => {});
  };
  if (end) {
    video.addEventListener("timeupdate", () => {
      if (video.currentTime >= end) { video.pause(); video.currentTime = start; }
    });
  }
  if (window.Hls && window.Hls.isSupported()) {
    // No worker: hls.js would start it from a blob: URL, which the strict CSP refuses.
    const hls = new window.Hls({ startPosition: start || -1, enableWorker: false });
    hls.loadSource(url);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.MANIFEST_PARSED, begin);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    video.addEventListener("loadedmetadata", begin, { once: true });
  }
}

function whenHls(fn) {
  if (window.Hls !== undefined || document.readyState === "complete") fn();
  else window.addEventListener("load", fn, { once: true });
}

// --- rendering ----------------------------------------------------------------------------
function renderHeader() {
  const r = state.room;
  $("status").textContent = STATUS[r.status] || r.status;
  $("status").className = `badge ${r.status}`;
  $("followers").textContent = fmt(tn("{n} 粉丝", "{n} 粉丝", r.streamer.followers), { n: r.streamer.followers });
  const warm = r.status === "scheduled";
  $("warmup").hidden = !warm;
  $("player-controls").hidden = warm; // nothing to play before the start
  if (warm) {
    const start = new Date(r.scheduled_start);
    const tick = () => {
      const s = Math.max(0, Math.floor((start - Date.now()) / 1000));
      const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
      $("countdown").textContent = s > 0 ? fmt(t("距开播 {h}小时{m}分{s}秒"), { h, m, s: sec }) : t("即将开播");
    };
    tick();
    clearInterval(renderHeader.timer);
    renderHeader.timer = setInterval(tick, 1000);
  }
}

function productItem(card, { highlight = false } = {}) {
  const buy = el("button", { text: t("去购买"), "data-buy": String(card.id) });
  buy.addEventListener("click", async () => {
    const body = { room: roomId };
    if (card.clip || clipId) body.clip = card.clip || clipId;
    try {
      const link = await call(`/api/v1/products/${card.id}/click`, { method: "POST", body });
      if (link.link_url) window.open(link.link_url, "_blank", "noopener");
      else if (link.mp_path) toast(fmt(t("小程序路径：{path}"), { path: link.mp_path }));
    } catch (error) { toast(error.message); }
  });
  return el("li", { class: `product${highlight ? " highlight" : ""}`, "data-product": String(card.id) },
    el("div", { class: "grow" },
      el("b", { text: `${card.pinned || highlight ? t("讲解中 · ") : ""}${card.name}` }),
      el("span", { class: "price", text: money(card.price) }),
      card.original_price ? el("s", { class: "muted", text: money(card.original_price) }) : ""),
    buy);
}

function renderPinned(card) {
  const box = $("pinned");
  if (!card) { box.hidden = true; box.replaceChildren(); return; }
  box.hidden = false;
  box.replaceChildren(el("ul", { class: "cards-list" }, productItem(card, { highlight: true })));
}

function renderProducts() {
  $("products").replaceChildren(...state.products.map((p) => productItem(p)));
}

function couponItem(c) {
  const code = claimed.get(c.id);
  let label = t("立即领取");
  if (code) label = t("已领取");
  else if (c.remaining <= 0) label = t("已抢光");
  const button = el("button", { text: label, disabled: !!code || c.remaining <= 0, "data-claim": String(c.id) });
  button.addEventListener("click", () => claim(c.id));
  return el("li", { class: "coupon", "data-coupon": String(c.id) },
    el("div", { class: "grow" },
      el("b", { text: couponLabel(c) }),
      el("span", { text: c.name }),
      el("span", { class: "muted", "data-left": String(c.id), text: code ? fmt(t("核销码 {code}"), { code }) : fmt(t("剩余 {n} 张"), { n: Math.max(c.remaining, 0) }) })),
    button);
}

function renderCoupons() {
  const list = [...coupons.values()];
  $("coupons").replaceChildren(...list.map(couponItem));
  if (!$("coupon-pop").hidden) {
    $("coupon-pop-body").replaceChildren(el("ul", { class: "cards-list" }, ...list.filter((c) => c.id === renderCoupons.popped).map(couponItem)));
  }
}

async function claim(couponId) {
  try {
    const body = clipId ? { clip: clipId } : undefined;
    const receipt = await call(`/api/v1/coupons/${couponId}/claim`, { method: "POST", body });
    claimed.set(couponId, receipt.code);
    const c = coupons.get(couponId);
    if (c) c.remaining = receipt.remaining;
    toast(t("领取成功！可在“我的优惠券”查看"));
  } catch (error) {
    const c = coupons.get(couponId);
    if (error.code === "sold_out") { if (c) c.remaining = 0; toast(t("手慢了，优惠券已抢光")); }
    else if (error.code === "limit_reached") { toast(t("您已领过该券，每人限领已满")); claimed.set(couponId, claimed.get(couponId) || t("已领")); }
    else if (error.code === "coupon_not_released") toast(t("优惠券还未发放"));
    else toast(error.message || t("领取失败，请重试"));
  }
  renderCoupons();
}

function popCoupon(c) {
  renderCoupons.popped = c.id;
  $("coupon-pop").hidden = false;
  renderCoupons();
}

function applyState(fresh) {
  state = fresh;
  renderHeader();
  renderMe(state.me);
  renderPinned(state.pinned);
  renderProducts();
  for (const c of state.coupons) coupons.set(c.id, { ...coupons.get(c.id), ...c });
  renderCoupons();
}

// The hub's room state (GET /api/v1/rooms/{id}/state, fetched by ws.js on every
// (re)connect): status, chat, counters, plus our "products" and "coupons" parts.
function applyHubState(hub) {
  // The room may have ended between the page's first read and the socket's state (or
  // while the socket was away): the state says so, and no event will.
  const ended = hub.status === "ended" && state.room.status !== "ended";
  const started = hub.status === "live" && state.room.status === "scheduled";
  if (hub.status) state.room.status = hub.status;
  if (ended) { endChat(); loadReplay(); }
  if (started) whenHls(() => play(state.play_url));
  if (Array.isArray(hub.products)) {
    state.products = hub.products;
    state.pinned = hub.products.find((p) => p.pinned) || null;
  }
  if (Array.isArray(hub.coupons)) {
    for (const c of hub.coupons) coupons.set(c.id, { ...coupons.get(c.id), ...c });
  }
  renderHeader();
  renderPinned(state.pinned);
  renderProducts();
  renderCoupons();
  if (chat) {
    if (Array.isArray(hub.chat)) chat.replaceAll(hub.chat);
    if (hub.announcement !== undefined) chat.announce(hub.announcement);
    if (hub.chat_settings) chat.applySettings(hub.chat_settings);
  }
  if (hub.online !== undefined) $("online").textContent = fmt(t("{n} 人在看"), { n: hub.online });
  if (hub.likes !== undefined) { likes = hub.likes; showLikes(); }
}

async function refresh() {
  applyState(await call(`/api/v1/rooms/${roomId}/public`));
}

function onEvent(event) {
  if (chat && chat.onEvent(event)) return;
  switch (event.type) {
    case "product.pinned":
      if (event.product) {
        state.products.forEach((p) => { p.pinned = p.id === event.product.id; });
      } else {
        state.products.forEach((p) => { p.pinned = false; });
      }
      state.pinned = event.product;
      renderPinned(event.product);
      renderProducts();
      break;
    case "coupon.released":
      coupons.set(event.coupon.id, event.coupon);
      popCoupon(event.coupon);
      break;
    case "coupon.stock": {
      const c = coupons.get(event.coupon);
      if (c) { c.remaining = Math.min(c.remaining ?? event.remaining, event.remaining); renderCoupons(); }
      break;
    }
    case "draw.result": {
      const mine = event.winners.some((w) => w.contact_id === session.contact_id);
      const names = event.winners.map((w) => w.nickname).join(t("、")) || t("暂无");
      toast(mine ? fmt(t("恭喜你中奖了！奖品：{prize}"), { prize: event.prize || "" }) : fmt(t("开奖啦：{names}"), { names }));
      break;
    }
    case "room.status": {
      const was = state.room.status;
      state.room.status = event.status;
      renderHeader();
      if (event.status === "live" && was !== "live") play(state.play_url);
      if (event.status === "ended" && was !== "ended") { endChat(); loadReplay(); }
      break;
    }
    case "like": likes = Math.max(likes, event.count || 0); showLikes(); break;
    case "online": $("online").textContent = fmt(t("{n} 人在看"), { n: event.count ?? 0 }); break;
    default: break;
  }
}

// --- invite ranking (邀请榜) ------------------------------------------------------------------
async function loadInvites() {
  const rows = await call(`/api/v1/rooms/${roomId}/invite-leaderboard`);
  const list = $("invites");
  if (!rows.length) {
    list.replaceChildren(el("li", { class: "muted", text: t("还没有人邀请好友，分享海报来当第一名吧") }));
    return;
  }
  list.replaceChildren(...rows.map((row, index) =>
    el("li", { class: row.contact_id === session.contact_id ? "me" : "", "data-contact": String(row.contact_id) },
      el("b", { class: "rank", text: String(index + 1) }),
      el("span", { class: "grow", text: row.contact_id === session.contact_id ? fmt(t("{name}（我）"), { name: row.nickname || t("观众") }) : row.nickname || t("观众") }),
      el("span", { class: "muted", text: fmt(tn("邀请 {n} 人", "邀请 {n} 人", row.direct), { n: row.direct }) }))));
}
$("invites-tab-button").addEventListener("click", () => loadInvites().catch((error) => toast(error.message)));

// --- replay and clips -----------------------------------------------------------------------
async function loadReplay() {
  let replay;
  try {
    replay = await api(`/api/v1/rooms/${roomId}/replay`);
  } catch {
    toast(t("直播已结束，回放生成中"));
    return;
  }
  $("clips-tab-button").hidden = false;
  $("clips").replaceChildren(...replay.clips.map((clip) =>
    el("li", { class: "product" },
      el("div", { class: "grow" }, el("b", { text: clip.product.name }),
        el("span", { class: "muted", text: `${clock(clip.start_s)} – ${clock(clip.end_s)}` })),
      el("a", { class: "pill", href: `/live/${roomId}/clips/${clip.id}/`, text: t("看讲解") }))));
  const clip = clipId ? replay.clips.find((c) => c.id === clipId) : null;
  whenHls(() => play(replay.url, clip ? { start: clip.start_s, end: clip.end_s } : {}));
  if (clip) renderPinned({ ...clip.product, clip: clip.id });
  call(`/api/v1/rooms/${roomId}/replay/watch`, { method: "POST", body: clipId ? { clip: clipId } : {} }).catch(() => {});
}

function clock(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

// --- actions ------------------------------------------------------------------------------
const chatForm = $("chat-form");
if (chatForm) {
  chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    const text = input.value.trim();
    if (!text || !stream || (chat && chat.restricted())) return;
    if (!stream.send({ type: "chat", text })) { toast(t("网络连接中，请稍后再发")); return; }
    chat.sent(text);
    input.value = "";
  });
}

// A room that has ended (or a replay) has no chat box: nobody can post there.
function endChat() {
  for (const id of ["chat-tab", "chat-tab-button"]) { const node = $(id); if (node) node.remove(); }
  chat = null;
  const first = document.querySelector(".tabs button");
  if (first && !document.querySelector(".tabs button.on")) first.click();
}

function showLikes() {
  const node = $("likes");
  if (node) node.textContent = String(likes || "");
}
if ($("like")) {
  $("like").addEventListener("click", () => {
    pendingLikes += 1;
    likes += 1;
    showLikes();
  });
}
// Likes travel as counters: one frame per second at most, whatever the tapping rate.
setInterval(() => {
  if (pendingLikes && stream) { stream.send({ type: "like", count: pendingLikes }); pendingLikes = 0; }
}, 1000);

function renderFollow(following, followers) {
  $("follow").dataset.following = following ? "1" : "0";
  $("follow").textContent = following ? t("已关注") : t("关注");
  $("follow").setAttribute("aria-pressed", following ? "true" : "false");
  if (followers !== undefined) {
    $("followers").textContent = fmt(tn("{n} 粉丝", "{n} 粉丝", followers), { n: followers });
  }
}

// The reservation and what the server says about its reminder. "开播前提醒你" is shown only
// when the server says a reminder can be delivered (a channel with an address and
// consent); otherwise the page says it is reserved and asks how to remind.
function renderReserved(reservation) {
  const button = $("reserve");
  if (!reservation) return;
  button.disabled = true;
  button.textContent = t("已预约");
  const reminder = reservation.reminder;
  const line = $("reminder");
  if (reminder && reminder.deliverable) {
    line.textContent = reminder.message || t("开播前会提醒你");
    line.hidden = false;
    $("remind-sms").hidden = true;
    return;
  }
  line.textContent = (reminder && reminder.message) || t("还没有可用的提醒方式：留下手机号，开播前才能提醒你");
  line.hidden = false;
  $("remind-sms").hidden = false;
}

async function loadReservation() {
  try {
    renderReserved(await call(`/api/v1/rooms/${roomId}/reserve`));
  } catch { /* not reserved, or no reminder details to show: the "me" part stands */ }
}

// The viewer's own side of the room after a (re)load: follow, reservation, chat limits.
function renderMe(me) {
  if (!me) return;
  renderFollow(me.following);
  renderReserved(me.reservation);
  if (chat) chat.applyMe(me);
}

$("follow").addEventListener("click", async () => {
  const following = $("follow").dataset.following === "1";
  try {
    const data = await call(`/api/v1/streamers/${state.room.streamer.id}/follow`, { method: following ? "DELETE" : "POST" });
    renderFollow(data.following, data.followers);
    toast(data.following ? t("已关注，开播早知道") : t("已取消关注"));
  } catch (error) { toast(error.message); }
});

$("reserve").addEventListener("click", async () => {
  try {
    const reservation = await call(`/api/v1/rooms/${roomId}/reserve`, { method: "POST", body: {} });
    renderReserved(reservation);
  } catch (error) { toast(error.message); }
});

// A phone bound here may merge this viewer into an existing contact (One-ID): from then on
// the page speaks with the surviving contact's token, also on the room socket.
async function bindPhone(options) {
  const result = await askPhone({ session, ...options });
  if (!result) return null;
  sessionUpdate(root.dataset.org, session, { token: result.token, contact_id: result.contact_id });
  if (stream) { stream.close(); stream = await openStream(); }
  return result;
}

// 我的: name, phone and the way to the privacy self-service. Binding a phone here merges
// this viewer with the contact who already had it (One-ID), as in the reminder step.
function renderMine() {
  const me = (state && state.me) || {};
  $("mine-name").textContent = session.nickname_generated ? t("未设置") : session.nickname || me.nickname || "";
  $("mine-phone").textContent = me.phone_bound ? t("已绑定") : t("未绑定");
  $("mine-bind").hidden = !!me.phone_bound;
}
$("mine").addEventListener("click", () => { renderMine(); $("mine-sheet").hidden = false; });
$("mine-close").addEventListener("click", () => { $("mine-sheet").hidden = true; });
$("mine-rename").addEventListener("click", async () => {
  $("mine-sheet").hidden = true;
  await askNickname({ title: t("改昵称"), current: session.nickname_generated ? "" : session.nickname || "" });
  renderMine();
  $("mine-sheet").hidden = false;
});
$("mine-bind").addEventListener("click", async () => {
  $("mine-sheet").hidden = true;
  const bound = await bindPhone({ title: t("绑定手机号"), why: t("绑定后，在不同设备和微信里都是同一个你：优惠券、预约和邀请记录都在") });
  if (!bound) return;
  await refresh();
  toast(t("手机号已绑定"));
  renderMine();
  $("mine-sheet").hidden = false;
});

$("remind-sms").addEventListener("click", async () => {
  const bound = await bindPhone({
    title: t("开播短信提醒"),
    why: t("开播前给这个手机号发一条提醒短信，只用于本场提醒"),
    smsConsent: true,
  });
  if (!bound) return;
  try {
    const reservation = await call(`/api/v1/rooms/${roomId}/reserve`, {
      method: "POST",
      body: { remind: "sms", phone: bound.phone, sms_consent: bound.sms_consent },
    });
    renderReserved(reservation);
    toast(t("手机号已绑定"));
  } catch (error) { toast(error.message); }
});

// A guest's made-up name ("观众2165") never goes on a poster: the viewer names themselves
// first (also their chat name from then on).
function askNickname({ title = t("海报上写谁邀请？"), current = "" } = {}) {
  const sheet = $("nickname-sheet");
  const form = $("nickname-form");
  const error = form.querySelector("[data-error='nickname']");
  form.reset();
  $("nickname-title").textContent = title;
  form.elements.nickname.value = current;
  error.hidden = true;
  sheet.hidden = false;
  form.elements.nickname.focus();
  return new Promise((resolve) => {
    const done = (value) => { sheet.hidden = true; form.onsubmit = null; $("nickname-cancel").onclick = null; resolve(value); };
    $("nickname-cancel").onclick = () => done(false);
    form.onsubmit = async (event) => {
      event.preventDefault();
      const nickname = form.elements.nickname.value.trim();
      if (!nickname) { error.textContent = t("请填写昵称"); error.hidden = false; return; }
      try {
        const data = await call("/api/v1/viewer/nickname", { method: "POST", body: { nickname } });
        sessionUpdate(root.dataset.org, session, { token: data.token, nickname: data.nickname, nickname_generated: false });
        if (stream) { stream.close(); stream = await openStream(); }
        done(true);
      } catch (failure) {
        error.textContent = (failure.fields.nickname || [])[0] || failure.message;
        error.hidden = false;
      }
    };
  });
}

$("share").addEventListener("click", async () => {
  if (session.nickname_generated && !(await askNickname())) return;
  const query = clipId ? `?clip=${clipId}` : "";
  const response = await call(`/api/v1/rooms/${roomId}/invite-poster${query}`, { raw: true });
  if (!response.ok) { toast(t("海报生成失败")); return; }
  const blob = await response.blob();
  $("poster-img").src = URL.createObjectURL(blob);
  $("poster").hidden = false;
});
$("poster-close").addEventListener("click", () => { $("poster").hidden = true; });
$("coupon-pop-close").addEventListener("click", () => { $("coupon-pop").hidden = true; });

// --- start ----------------------------------------------------------------------------------
// Phones: the player has no native control bar (chat lies over the video); the page's own
// play and sound buttons sit at the top, where nothing covers them.
const phone = window.matchMedia("(max-width: 640px)");
function fitControls() {
  $("player").controls = !phone.matches;
}
phone.addEventListener("change", fitControls);
fitControls();
$("play-toggle").addEventListener("click", () => {
  const video = $("player");
  if (video.paused) video.play().catch(() => {}); else video.pause();
});
$("sound-toggle").addEventListener("click", () => {
  const video = $("player");
  video.muted = !video.muted;
  $("sound-toggle").textContent = video.muted ? t("开启声音") : t("静音");
});
$("player").addEventListener("play", () => { $("play-toggle").textContent = t("暂停"); });
$("player").addEventListener("pause", () => { $("play-toggle").textContent = t("播放"); });

function openStream() {
  return subscribe({
    roomId,
    token: session.token,
    onEvent,
    onState: (fresh) => { if (fresh) applyHubState(fresh); else refresh(); },
    onStatus: () => {},
  });
}

async function main() {
  session = await viewerSession(root.dataset.org, roomId);
  if ($("chat-tab")) chat = createChat({ myContactId: () => session.contact_id ?? null, toast });
  try {
    const mine = await call("/api/v1/me/coupons");
    for (const c of mine) claimed.set(c.coupon, c.code);
  } catch { /* receipts are a nicety */ }
  await refresh();
  if (mode === "live" && state.room.status === "live") whenHls(() => play(state.play_url));
  if (mode !== "live" || state.room.status === "ended") { endChat(); loadReplay(); }
  if (mode === "live" && state.room.status !== "ended") stream = await openStream();
  if (state.me && state.me.reservation) await loadReservation();
  root.dataset.ready = "1";
}

main().catch((error) => toast(error.message || t("加载失败")));
