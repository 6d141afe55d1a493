// Shared by the viewer pages and the host console: JSON API calls with a token, and the
// room event stream (static/shared/ws.js from the real-time hub).

import { t, fmt } from "../shared/i18n.js";

export async function api(path, { token, method = "GET", body, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Token ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (raw) return response;
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch { data = null; }
  }
  if (!response.ok) {
    const error = new Error((data && data.message) || `HTTP ${response.status}`);
    error.status = response.status;
    error.code = data && data.code;
    error.fields = (data && data.fields) || {};
    throw error;
  }
  return data;
}

// Subscribe to a room's events. Uses the hub's ws.js (one WebSocket per viewer, sequence
// numbers, state on reconnect). Only if ws.js is missing (a build without the hub) does
// it fall back to re-reading state every few seconds.
export async function subscribe({ roomId, token, staff = false, onEvent, onState, onStatus }) {
  let ws = null;
  try {
    ws = await import("/static/shared/ws.js");
  } catch {
    ws = null;
  }
  const each = (event) => {
    if (event && event.type === "batch" && Array.isArray(event.events)) {
      event.events.forEach(each);
    } else if (event) {
      onEvent(event);
    }
  };
  if (ws) {
    const connect = staff && ws.connectStaff ? ws.connectStaff : ws.connectRoom;
    return connect({ roomId, token, onEvent: each, onState: onState || (() => {}), onStatus: onStatus || (() => {}) });
  }
  if (onStatus) onStatus("fallback");
  const timer = setInterval(() => onState && onState(null), 3000);
  return { send() {}, close() { clearInterval(timer); } };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else if (value !== undefined && value !== null) node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

export function money(value) {
  return `¥${Number(value).toFixed(2).replace(/\.00$/, "")}`;
}

export function couponLabel(c) {
  // "8折" means paying 80%: English says "20% off", so both numbers are on offer.
  if (c.kind === "discount") return fmt(t("{n}折"), { n: Number(c.amount), off: Math.round((10 - Number(c.amount)) * 10) });
  if (c.kind === "threshold") return fmt(t("满{threshold}减{amount}"), { threshold: Number(c.threshold), amount: Number(c.amount) });
  return fmt(t("无门槛减{amount}"), { amount: Number(c.amount) });
}
