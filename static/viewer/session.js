import { api } from "/static/viewer/api.js";

// A guest viewer session per organisation, kept across reloads (same guest id → same
// contact). The invite code from the share link (?invite=) rides along the first time.
export async function viewerSession(org, roomId) {
  const key = `qm.viewer.${org}`;
  const saved = JSON.parse(localStorage.getItem(key) || "null");
  if (saved && saved.token && saved.expires > Date.now()) return saved;
  const guestId = (saved && saved.guest_id) || undefined;
  const nickname = (saved && saved.nickname) || `观众${Math.floor(1000 + Math.random() * 9000)}`;
  const body = { org, guest_name: nickname };
  if (roomId) body.room = roomId;
  if (guestId) body.guest_id = guestId;
  const invite = new URLSearchParams(location.search).get("invite");
  if (invite && /^[0-9a-f]{4,16}$/.test(invite)) body.invite = invite;
  const data = await api("/api/v1/viewer/session", { method: "POST", body });
  const session = { ...data, nickname, expires: Date.now() + 10 * 3600 * 1000 };
  localStorage.setItem(key, JSON.stringify(session));
  return session;
}
