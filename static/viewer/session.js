import { api } from "/static/viewer/api.js";
import { inWeChat, setUpWeChatShare, startWeChatLogin, takeWeChatCode } from "/static/viewer/wechat.js";
import { t, fmt } from "../shared/i18n.js";

// A viewer session per organisation, kept across reloads: inside WeChat's browser through
// WeChat OAuth (wechat.js), elsewhere as a guest (same guest id → same contact). The invite
// code from the share link (?invite=) rides along the first time.
export async function viewerSession(org, roomId) {
  const key = `qm.viewer.${org}`;
  const saved = JSON.parse(localStorage.getItem(key) || "null");
  const wechat = takeWeChatCode();
  if (!wechat && saved && saved.token && saved.expires > Date.now()) return withShare(saved, roomId);
  if (!wechat && inWeChat() && startWeChatLogin(org)) {
    return new Promise(() => {}); // the browser is leaving for WeChat's authorize page
  }
  const guestId = (saved && saved.guest_id) || undefined;
  // A made-up name lets a guest chat at once; it is marked so the page never prints it on
  // a poster as if the viewer had chosen it.
  const generated = !(saved && saved.nickname) || !!(saved && saved.nickname_generated);
  const nickname = (saved && saved.nickname) || fmt(t("观众{n}"), { n: Math.floor(1000 + Math.random() * 9000) });
  const body = wechat ? { org, ...wechat } : { org, guest_name: nickname };
  if (roomId) body.room = roomId;
  if (guestId) body.guest_id = guestId;
  const invite = new URLSearchParams(location.search).get("invite");
  if (invite && /^[0-9a-f]{4,16}$/.test(invite)) body.invite = invite;
  const data = await api("/api/v1/viewer/session", { method: "POST", body });
  const session = {
    ...data,
    guest_id: data.guest_id || guestId,
    nickname: (wechat && data.nickname) || nickname,
    nickname_generated: !(wechat && data.nickname) && generated,
    expires: Date.now() + 10 * 3600 * 1000,
  };
  localStorage.setItem(key, JSON.stringify(session));
  return withShare(session, roomId);
}

// Inside WeChat the share card is set up in the background: a failure leaves a plain link.
function withShare(session, roomId) {
  setUpWeChatShare({ token: session.token, roomId }).catch(() => {});
  return session;
}

// Keep what changed (a new token after a phone binding merged two contacts, a chosen
// nickname) for the next page load.
export function sessionUpdate(org, session, changes) {
  Object.assign(session, changes);
  localStorage.setItem(`qm.viewer.${org}`, JSON.stringify(session));
  return session;
}
