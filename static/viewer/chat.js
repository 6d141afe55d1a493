// The viewer page's chat: messages keyed by id (so a host's delete removes one everywhere
// and an approved message replaces its "审核中" copy), the pinned announcement, and every
// refusal or restriction told to the viewer it concerns, at once and in words.
//
// Shadow-bans are never shown: the author sees their own shadowed messages as normal ones
// (docs/realtime.md), and nobody else sees them.

import { el } from "/static/viewer/api.js";
import { t, fmt } from "../shared/i18n.js";

const $ = (id) => document.getElementById(id);
const MAX_LINES = 100;

function clockOf(iso) {
  const when = new Date(iso);
  return `${String(when.getHours()).padStart(2, "0")}:${String(when.getMinutes()).padStart(2, "0")}`;
}

// What the sender is told when the server refuses a message (socket notice codes).
export function noticeText(notice) {
  switch (notice.code) {
    case "muted":
      return notice.until ? fmt(t("你已被禁言，{time} 后可再发言"), { time: clockOf(notice.until) }) : t("你已被主播禁言");
    case "banned": return t("你已被禁止在此直播间发言");
    case "rate_limited": return t("发言太快了，请稍后再试");
    case "slow_mode": return fmt(t("慢速模式：新观众每 {n} 秒可发言一次"), { n: notice.seconds || "" });
    case "sensitive": return t("消息包含敏感词，未发送");
    case "too_long": return fmt(t("消息太长（最多 {n} 字）"), { n: notice.max_length || 200 });
    case "empty": return t("消息不能为空");
    case "room_ended": return t("直播已结束，无法发言");
    case "forbidden": return t("操作不被允许");
    case "bad_frame":
    case "unknown_type":
    case "error": return t("发送失败，请重试");
    default: return notice.message || t("发送失败，请重试");
  }
}

export function createChat({ myContactId, toast }) {
  const list = $("chat");
  const stateLine = $("chat-state");
  const errorLine = $("chat-error");
  const form = $("chat-form");
  let lastSent = "";
  let restriction = null; // {kind: "muted"|"banned"|"closed", until}
  let settings = { slow_mode_seconds: 0, premoderation: false };
  let unmuteTimer = null;

  function line(message) {
    const mine = myContactId() !== null && message.contact_id === myContactId();
    const item = el("li", { "data-msg": String(message.id ?? ""), class: message.host ? "host" : "" },
      el("b", { text: fmt(t("{name}："), { name: message.host ? fmt(t("主播 {name}"), { name: message.nickname || "" }) : message.nickname || t("观众") }) }),
      el("span", { text: message.text || "" }));
    if (message.status === "pending" && mine) {
      item.classList.add("pending");
      item.append(el("em", { class: "tag", text: t("审核中，通过后大家可见") }));
    }
    return item;
  }

  function add(message) {
    if (!list) return;
    if (message.status === "pending" && message.contact_id !== myContactId()) return;
    const existing = message.id !== undefined ? list.querySelector(`[data-msg="${message.id}"]`) : null;
    if (existing) {
      existing.replaceWith(line(message)); // e.g. "pending" → "visible" after approval
      return;
    }
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(line(message));
    while (list.children.length > MAX_LINES) list.firstChild.remove();
    if (atBottom || message.contact_id === myContactId()) list.scrollTop = list.scrollHeight;
  }

  function remove(messageId) {
    const node = list && list.querySelector(`[data-msg="${messageId}"]`);
    if (node) node.remove();
  }

  function replaceAll(messages) {
    if (!list) return;
    list.replaceChildren();
    messages.forEach(add);
    list.scrollTop = list.scrollHeight;
  }

  function system(text) {
    if (!list) return;
    list.append(el("li", { class: "system", text }));
    list.scrollTop = list.scrollHeight;
  }

  function announce(text) {
    const box = $("announcement");
    if (!box) return;
    box.hidden = !text;
    $("announcement-text").textContent = text || "";
  }

  function renderState() {
    if (!form) return;
    const input = form.elements.text;
    const send = form.querySelector("button[type=submit]");
    let text = "";
    if (restriction && restriction.kind === "banned") text = t("你已被禁止在此直播间发言");
    else if (restriction && restriction.kind === "closed") text = t("你已被移出直播间");
    else if (restriction && restriction.kind === "muted") {
      text = restriction.until ? fmt(t("你已被禁言，{time} 后可再发言"), { time: clockOf(restriction.until) }) : t("你已被主播禁言");
    } else if (settings.premoderation) text = t("本场发言需主播审核后显示");
    else if (settings.slow_mode_seconds) text = fmt(t("慢速模式：新观众每 {n} 秒可发言一次"), { n: settings.slow_mode_seconds });
    stateLine.textContent = text;
    stateLine.hidden = !text;
    stateLine.classList.toggle("blocked", !!restriction);
    input.disabled = !!restriction;
    send.disabled = !!restriction;
    input.placeholder = restriction ? t("暂时不能发言") : t("说点什么…");
  }

  function restrict(kind, until = null) {
    restriction = kind ? { kind, until } : null;
    clearTimeout(unmuteTimer);
    if (kind === "muted" && until) {
      // A timed mute ends by itself: no event comes, so the page lifts it on time.
      const ms = new Date(until) - Date.now();
      if (ms > 0 && ms < 2 ** 31) unmuteTimer = setTimeout(() => { restriction = null; renderState(); }, ms);
    }
    renderState();
  }

  function showError(text) {
    if (!errorLine) return;
    errorLine.textContent = text;
    errorLine.hidden = !text;
  }

  // From the room state or GET /public's "me".
  function applyMe(me) {
    if (!me || !me.chat) return;
    if (me.chat.banned) restrict("banned");
    else if (me.chat.muted) restrict("muted", me.chat.muted_until);
    else if (restriction && restriction.kind !== "closed") restrict(null);
  }

  function applySettings(next) {
    if (!next) return;
    const before = settings;
    settings = { ...settings, ...next };
    renderState();
    return before;
  }

  // Returns true when the event was a chat/moderation/announcement/notice event.
  function onEvent(event) {
    switch (event.type) {
      case "chat": add(event); return true;
      case "announcement":
        announce(event.text);
        if (event.text) toast(t("主播发布了公告"));
        return true;
      case "moderation": {
        const me = myContactId();
        if (event.action === "delete") { remove(event.message_id); return true; }
        if (event.action === "settings") {
          const before = applySettings({ slow_mode_seconds: event.slow_mode_seconds, premoderation: event.premoderation });
          if (event.premoderation && !before.premoderation) system(t("主播开启了发言审核"));
          if (!event.premoderation && before.premoderation) system(t("主播关闭了发言审核"));
          if (event.slow_mode_seconds && event.slow_mode_seconds !== before.slow_mode_seconds) {
            system(fmt(t("主播开启了慢速模式：新观众每 {n} 秒可发言一次"), { n: event.slow_mode_seconds }));
          }
          if (!event.slow_mode_seconds && before.slow_mode_seconds) system(t("主播关闭了慢速模式"));
          return true;
        }
        if (event.contact_id !== me) return true; // another viewer's: not ours to show
        if (event.action === "mute") { restrict("muted", event.until); toast(noticeText({ code: "muted", until: event.until })); }
        if (event.action === "unmute") { restrict(null); toast(t("你已被解除禁言，可以发言了")); }
        if (event.action === "ban") { restrict("banned"); toast(t("你已被禁止在此直播间发言")); }
        if (event.action === "unban") { restrict(null); toast(t("你已被解除禁言，可以发言了")); }
        return true;
      }
      case "notice": {
        if (event.code === "closed") {
          if (event.close_code === 4403) { restrict("closed"); toast(t("你已被移出直播间")); }
          else { showError(t("连接已断开，请刷新页面")); toast(t("连接已断开，请刷新页面")); }
          return true;
        }
        if (event.code === "muted") restrict("muted", event.until);
        if (event.code === "banned") restrict("banned");
        const text = noticeText(event);
        showError(text);
        toast(text);
        // The refused text goes back into the box: the viewer may edit and resend it.
        const input = form && form.elements.text;
        if (input && !input.value && lastSent && ["rate_limited", "slow_mode", "sensitive", "too_long", "error"].includes(event.code)) {
          input.value = lastSent;
        }
        return true;
      }
      default: return false;
    }
  }

  function sent(text) {
    lastSent = text;
    showError("");
  }

  renderState();
  return { add, replaceAll, announce, applyMe, applySettings, onEvent, sent, restricted: () => !!restriction };
}
