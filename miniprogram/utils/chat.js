// The room's chat as plain data (no wx, no page): messages keyed by id, the pinned
// announcement, chat settings, and the restriction on this viewer — the same behaviour as
// the H5 page's static/viewer/chat.js, so both clients answer the viewer alike.
//
// Shadow-bans are never shown as such: the author sees their own shadowed message like any
// other, and nobody else ever receives it (docs/realtime.md). Pending (pre-moderated)
// messages reach only their author, marked as awaiting review.

const MAX_LINES = 100;
// Refused texts the viewer may edit and send again go back into the input box.
const REFILL_CODES = ["rate_limited", "slow_mode", "sensitive", "too_long", "error", "content_risky"];

function clockOf(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  return `${String(when.getHours()).padStart(2, "0")}:${String(when.getMinutes()).padStart(2, "0")}`;
}

function mutedText(until) {
  return until ? `你已被禁言，${clockOf(until)} 后可再发言` : "你已被主播禁言";
}

// What the sender is told when the server refuses a message (socket notice codes).
function noticeText(notice) {
  switch (notice.code) {
    case "muted": return mutedText(notice.until);
    case "banned": return "你已被禁止在此直播间发言";
    case "rate_limited": return "发言太快了，请稍后再试";
    case "slow_mode": return `慢速模式：新观众每 ${notice.seconds || ""} 秒可发言一次`;
    case "sensitive": return "消息包含敏感词，未发送";
    case "content_risky": return "消息未通过内容安全检查，未发送";
    case "too_long": return `消息太长（最多 ${notice.max_length || 200} 字）`;
    case "empty": return "消息不能为空";
    case "room_ended": return "直播已结束，无法发言";
    case "forbidden": return "操作不被允许";
    case "bad_frame":
    case "unknown_type":
    case "error": return "发送失败，请重试";
    default: return notice.message || "发送失败，请重试";
  }
}

class ChatModel {
  constructor({ myContactId }) {
    this.myContactId = myContactId; // () => number | null
    this.messages = [];
    this.announcement = "";
    this.settings = { slow_mode_seconds: 0, premoderation: false };
    this.restriction = null; // {kind: "muted"|"banned"|"closed", until}
    this.error = "";
    this.lastSent = "";
  }

  mine(message) {
    const me = this.myContactId();
    return me !== null && me !== undefined && message.contact_id === me;
  }

  add(message) {
    if (message.status === "pending" && !this.mine(message)) return;
    const index = message.id !== undefined ? this.messages.findIndex((m) => m.id === message.id) : -1;
    if (index >= 0) {
      this.messages[index] = message; // e.g. "pending" → "visible" after approval
      return;
    }
    this.messages.push(message);
    if (this.messages.length > MAX_LINES) this.messages.splice(0, this.messages.length - MAX_LINES);
  }

  replaceAll(messages) {
    this.messages = [];
    (messages || []).forEach((m) => this.add(m));
  }

  system(text) {
    this.messages.push({ id: `system-${this.messages.length}-${Date.now()}`, system: true, text });
  }

  restrict(kind, until = null) {
    this.restriction = kind ? { kind, until } : null;
  }

  // Restrictions that end by themselves (a timed mute) are lifted by the caller's timer.
  expire(nowMs) {
    const r = this.restriction;
    if (r && r.kind === "muted" && r.until && new Date(r.until).getTime() <= nowMs) this.restriction = null;
  }

  // GET /public's and the state's "me": mute or ban after a reload.
  applyMe(me) {
    if (!me || !me.chat) return;
    if (me.chat.banned) this.restrict("banned");
    else if (me.chat.muted) this.restrict("muted", me.chat.muted_until);
    else if (this.restriction && this.restriction.kind !== "closed") this.restrict(null);
  }

  applySettings(next) {
    const before = this.settings;
    if (next) this.settings = { ...this.settings, ...next };
    return before;
  }

  sent(text) {
    this.lastSent = text;
    this.error = "";
  }

  // Applies one room event. Returns null when the event is not about chat, else
  // {toast?, refill?} — what the page should tell the viewer.
  onEvent(event) {
    switch (event.type) {
      case "chat":
        this.add(event);
        return {};
      case "announcement":
        this.announcement = event.text || "";
        return event.text ? { toast: "主播发布了公告" } : {};
      case "moderation":
        return this.onModeration(event);
      case "notice":
        return this.onNotice(event);
      default:
        return null;
    }
  }

  onModeration(event) {
    if (event.action === "delete") {
      this.messages = this.messages.filter((m) => m.id !== event.message_id);
      return {};
    }
    if (event.action === "settings") {
      const before = this.applySettings({ slow_mode_seconds: event.slow_mode_seconds, premoderation: event.premoderation });
      if (event.premoderation && !before.premoderation) this.system("主播开启了发言审核");
      if (!event.premoderation && before.premoderation) this.system("主播关闭了发言审核");
      if (event.slow_mode_seconds && event.slow_mode_seconds !== before.slow_mode_seconds) {
        this.system(`主播开启了慢速模式：新观众每 ${event.slow_mode_seconds} 秒可发言一次`);
      }
      if (!event.slow_mode_seconds && before.slow_mode_seconds) this.system("主播关闭了慢速模式");
      return {};
    }
    if (event.contact_id !== this.myContactId()) return {}; // another viewer's: not ours to show
    if (event.action === "mute") {
      this.restrict("muted", event.until);
      return { toast: mutedText(event.until) };
    }
    if (event.action === "ban") {
      this.restrict("banned");
      return { toast: "你已被禁止在此直播间发言" };
    }
    if (event.action === "unmute" || event.action === "unban") {
      this.restrict(null);
      return { toast: "你已被解除禁言，可以发言了" };
    }
    return {}; // shadow/unshadow never reach viewers; ignore anything else
  }

  onNotice(event) {
    if (event.code === "closed") {
      if (event.close_code === 4403) {
        this.restrict("closed");
        return { toast: "你已被移出直播间" };
      }
      return {};
    }
    if (event.code === "offline") return null; // the page's connection line, not chat
    if (event.code === "muted") this.restrict("muted", event.until);
    if (event.code === "banned") this.restrict("banned");
    const text = noticeText(event);
    this.error = text;
    const effect = { toast: text };
    if (this.lastSent && REFILL_CODES.includes(event.code)) effect.refill = this.lastSent;
    return effect;
  }

  // The line under the chat box: why the viewer cannot post, or the room's rules.
  stateLine() {
    const r = this.restriction;
    if (r && r.kind === "banned") return "你已被禁止在此直播间发言";
    if (r && r.kind === "closed") return "你已被移出直播间";
    if (r && r.kind === "muted") return mutedText(r.until);
    if (this.settings.premoderation) return "本场发言需主播审核后显示";
    if (this.settings.slow_mode_seconds) return `慢速模式：新观众每 ${this.settings.slow_mode_seconds} 秒可发言一次`;
    return "";
  }

  // What the page renders.
  view() {
    return {
      lines: this.messages.map((m) => ({
        key: String(m.id),
        system: !!m.system,
        host: !!m.host,
        name: m.system ? "" : m.host ? `主播 ${m.nickname || ""}` : m.nickname || "观众",
        text: m.text || "",
        pending: m.status === "pending" && this.mine(m),
      })),
      announcement: this.announcement,
      stateLine: this.stateLine(),
      blocked: !!this.restriction,
      error: this.error,
    };
  }
}

module.exports = { ChatModel, noticeText, clockOf };
