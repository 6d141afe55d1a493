// Display helpers shared by the pages (Chinese UI).

function money(value) {
  if (value === null || value === undefined || value === "") return "";
  return `¥${Number(value).toFixed(2).replace(/\.00$/, "")}`;
}

function couponLabel(c) {
  if (c.kind === "discount") return `${Number(c.amount)}折`;
  if (c.kind === "threshold") return `满${Number(c.threshold)}减${Number(c.amount)}`;
  return `无门槛减${Number(c.amount)}`;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function countdown(startIso, nowMs) {
  const s = Math.max(0, Math.floor((new Date(startIso).getTime() - nowMs) / 1000));
  if (!s) return "即将开播";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `距开播 ${h}小时${m}分${s % 60}秒`;
}

function dateTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}月${d.getDate()}日 ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const STATUS = { scheduled: "预告", live: "直播中", ended: "已结束" };

module.exports = { money, couponLabel, clock, countdown, dateTime, STATUS };
