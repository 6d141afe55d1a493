// 战报: a room's post-broadcast report, drawn with ECharts (static/vendor/echarts.min.js,
// loaded before this module) from GET /api/v1/rooms/{id}/report — the one source of its
// figures. 导出图片 composes the charts and both tables into one PNG; 导出 PDF lays the same
// parts out on A4 pages with jsPDF (static/vendor/jspdf.umd.min.js), each part drawn on a
// canvas first, so Chinese text shows without a font embedded in the PDF.
import { api, el } from "/static/viewer/api.js";
import { bindStaffSignIn } from "../shared/staff_sign_in.js";
import { t, fmt, lang } from "../shared/i18n.js";

const $ = (id) => document.getElementById(id);
const root = $("report");
const roomId = root.dataset.room;
const STATUS = { scheduled: t("预告"), live: t("直播中"), ended: t("已结束") };
// The console keeps its token under qm.staff, the workspace (sales) under qm.staff.token.
const KEYS = ["qm.staff", "qm.staff.token"];
let token = KEYS.map((key) => sessionStorage.getItem(key)).find(Boolean) || null;
let report = null;
const charts = {};
const RED = "#e4393c";
const PALETTE = [RED, "#f0883e", "#3a7bd5", "#2ea44f", "#8957e5", "#999"];

function show(id) {
  for (const section of ["login", "picker", "sheet"]) $(section).hidden = section !== id;
}

function call(path) {
  return api(path, { token }).catch((error) => {
    if (error.status === 401) {
      for (const key of KEYS) sessionStorage.removeItem(key);
      token = null;
      show("login");
    }
    throw error;
  });
}

const when = (iso) => new Date(iso).toLocaleString(lang(), { hour12: false });
const clock = (iso) => new Date(iso).toLocaleTimeString(lang(), { hour: "2-digit", minute: "2-digit", hour12: false });
const percent = (rate) => (rate == null ? "—" : `${(rate * 100).toFixed(1)}%`);
const gradeName = (grade) => grade || t("未评级");

bindStaffSignIn($("login-form"), $("login-error"), (signedIn) => {
  token = signedIn;
  start();
});

async function loadPicker() {
  show("picker");
  const data = await call("/api/v1/rooms");
  const list = $("report-rooms");
  list.replaceChildren();
  for (const r of data.results) {
    list.append(el("li", { "data-room-item": String(r.id) },
      el("span", { class: `badge ${r.status}`, text: STATUS[r.status] || r.status }),
      el("span", { class: "grow", text: `${r.title} · ${when(r.scheduled_start)}` }),
      el("a", { class: "btn-link", href: `/console/rooms/${r.id}/report/`, text: t("查看战报") })));
  }
  if (!data.results.length) list.append(el("li", { class: "muted", text: t("还没有直播间") }));
}

async function loadReport() {
  show("sheet");
  try {
    report = await call(`/api/v1/rooms/${roomId}/report`);
  } catch (error) {
    $("report-error").textContent = error.status === 404 ? t("没有这个直播间") : error.message;
    return;
  }
  const room = report.room;
  $("report-title").textContent = `${t("战报")} · ${room.title}`;
  $("report-status").textContent = STATUS[room.status] || room.status;
  $("report-status").className = `badge ${room.status}`;
  $("report-when").textContent = room.started_at
    ? `${when(room.started_at)} — ${room.ended_at ? when(room.ended_at) : t("直播中")}`
    : t("尚未开播");
  renderTotals();
  for (const [id, option] of Object.entries(OPTIONS)) draw(id, option());
  renderCoupons();
  renderInvites();
  renderRecall();
}

function totals() {
  const sum = (rows, key) => rows.reduce((n, row) => n + row[key], 0);
  return [
    ["peak", t("峰值在线"), report.online.peak],
    ["explained", t("讲解商品"), report.online.explained.length],
    ["claimed", t("领券"), sum(report.coupons, "claimed")],
    ["redeemed", t("核销"), sum(report.coupons, "redeemed")],
    ["leads", t("新增线索"), report.leads.total],
    ["chat", t("弹幕"), report.chat.total],
  ];
}

function renderTotals() {
  $("report-totals").replaceChildren(...totals().map(([key, label, value]) =>
    el("div", {}, el("b", { text: String(value), "data-total": key }), el("span", { text: label }))));
}

function draw(id, option) {
  charts[id]?.dispose();
  charts[id] = globalThis.echarts.init($(id), null, { renderer: "canvas" });
  // No animation: the export (getDataURL) must never catch a chart halfway drawn.
  charts[id].setOption({ animation: false, ...option });
}

const narrow = () => window.innerWidth < 600;
// Both time charts span the broadcast (when it aired), so explained spans and chat line up.
const timeAxis = () => ({
  type: "time",
  min: report.room.started_at || undefined,
  max: report.room.ended_at || undefined,
  axisLabel: { hideOverlap: true },
});
const empty = (text) => ({ title: { text, left: "center", top: "middle", textStyle: { color: "#999", fontSize: 14, fontWeight: "normal" } } });

function onlineOption() {
  const online = report.online;
  const series = online.series.map((p) => [p.at, p.online]);
  const option = {
    color: [RED],
    grid: { left: 40, right: 16, top: 36, bottom: 32 },
    tooltip: { trigger: "axis" },
    xAxis: timeAxis(),
    yAxis: { type: "value", minInterval: 1, name: t("在线") },
    series: [{
      name: t("在线人数"),
      type: "line",
      showSymbol: false,
      data: series,
      markPoint: {
        symbol: "pin",
        symbolSize: 44,
        label: { fontSize: 11 },
        data: online.peaks.map((p) => ({ name: t("峰值"), coord: [p.at, p.online], value: p.online })),
      },
      markArea: {
        itemStyle: { color: "rgba(240, 136, 62, .16)" },
        label: { color: "#8a4b08", fontSize: 11, position: "insideTop" },
        data: online.explained.map((m) => [{ name: m.name, xAxis: m.start }, { xAxis: m.end }]),
      },
    }],
  };
  if (!series.length) Object.assign(option, empty(t("没有在线人数记录")));
  return option;
}

function funnelOption(small = narrow()) {
  const rows = report.products;
  const stages = [["exposed", t("曝光")], ["clicked", t("点击")], ["claimed", t("领券")], ["redeemed", t("核销")]];
  const option = {
    color: PALETTE,
    legend: { top: 0 },
    grid: { left: small ? 72 : 96, right: 24, top: 32, bottom: 24 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: rows.map((r) => r.name), axisLabel: { width: small ? 64 : 88, overflow: "truncate" } },
    series: stages.map(([key, name]) => ({
      name, type: "bar", data: rows.map((r) => r[key]), label: { show: true, position: "right", fontSize: 10 },
    })),
  };
  if (!rows.length) Object.assign(option, empty(t("这场没有上架商品")));
  return option;
}

function leadsOption() {
  const rows = report.leads.by_grade;
  const option = {
    color: PALETTE,
    tooltip: { trigger: "item" },
    legend: { bottom: 0 },
    series: [{
      name: t("新增线索"),
      type: "pie",
      radius: ["38%", "66%"],
      label: { formatter: "{b}: {c}" },
      data: rows.map((r) => ({ name: gradeName(r.grade), value: r.count })),
    }],
  };
  if (!rows.length) Object.assign(option, empty(t("这场没有带来新线索")));
  return option;
}

// Chat per minute on a category axis of every minute of the broadcast (zeros included):
// bars on a time axis would widen it past the broadcast and misalign it with the curve above.
function chatMinutes() {
  const counts = new Map(report.chat.series.map((r) => [new Date(r.at).getTime(), r.count]));
  const known = [...counts.keys()];
  const floor = (ms) => Math.floor(ms / 60000) * 60000;
  const room = report.room;
  const from = floor(room.started_at ? new Date(room.started_at).getTime() : Math.min(...known));
  const to = floor(room.ended_at ? new Date(room.ended_at).getTime() : Math.max(Date.now(), ...known));
  const minutes = [];
  // At most a day of minutes: a longer span is not a broadcast worth a bar per minute.
  for (let ms = Math.min(from, ...known); ms <= Math.max(to, ...known) && minutes.length < 1440; ms += 60000) {
    minutes.push([ms, counts.get(ms) || 0]);
  }
  return minutes;
}

function chatOption() {
  const rows = report.chat.series.length ? chatMinutes() : [];
  const option = {
    color: ["#3a7bd5"],
    grid: { left: 40, right: 16, top: 24, bottom: 32 },
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: rows.map(([ms]) => clock(ms)), axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: t("弹幕"), type: "bar", barMaxWidth: 12, data: rows.map(([, n]) => n) }],
  };
  if (!rows.length) Object.assign(option, empty(t("这场没有弹幕")));
  return option;
}

// Each chart's option from the report; the PDF export draws them again at the page's width
// (a wide funnel: `small` false).
const OPTIONS = {
  "chart-online": onlineOption,
  "chart-funnel": funnelOption,
  "chart-leads": leadsOption,
  "chart-chat": chatOption,
};

function cells(...values) {
  return el("tr", {}, ...values.map((value) => el("td", { text: String(value) })));
}

function couponRows() {
  return report.coupons.map((c) => [c.name, c.stock, c.claimed, c.redeemed, percent(c.claim_rate), percent(c.redeem_rate)]);
}

function inviteRows() {
  return report.invites.map((r, i) => [i + 1, r.nickname || `#${r.contact_id}`, r.direct, r.total]);
}

function renderCoupons() {
  const rows = couponRows();
  $("coupon-rows").replaceChildren(...(rows.length ? rows.map((row) => cells(...row))
    : [el("tr", {}, el("td", { colSpan: 6, class: "muted", text: t("这场没有发券") }))]));
}

function renderInvites() {
  const rows = inviteRows();
  $("invite-rows").replaceChildren(...(rows.length ? rows.map((row) => cells(...row))
    : [el("tr", {}, el("td", { colSpan: 4, class: "muted", text: t("这场没有邀请") }))]));
}

function renderRecall() {
  const recall = report.recall;
  $("recall-box").hidden = !recall;
  if (!recall) return;
  const u = recall.uplift;
  const items = [
    [t("召回活动"), recall.name],
    [t("触达组"), `${u.treatment_converted}/${u.treatment_n}`],
    [t("对照组"), `${u.holdout_converted}/${u.holdout_n}`],
    [t("提升"), u.enough ? `${(u.uplift * 100).toFixed(1)} pt` : fmt(t("每组满 {n} 人后显示"), { n: u.min_arm })],
  ];
  if (u.enough && u.ci95) items.push([t("95% 置信区间"), `${(u.ci95[0] * 100).toFixed(1)} ~ ${(u.ci95[1] * 100).toFixed(1)} pt`]);
  $("recall").replaceChildren(...items.map(([label, value]) =>
    el("div", {}, el("b", { text: String(value) }), el("span", { text: label }))));
}

// -- export: one PNG of the whole report, or an A4 PDF -------------------------------------

const FONT = '"PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
const INK = "#1f2329";
const MUTED = "#646a73";
const LINE = 22;

function image(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = reject;
    img.src = url;
  });
}

function download(href, filename) {
  const link = el("a", { href, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
}

function reportTables() {
  return [
    [t("优惠券核销"), [[t("优惠券"), t("总量"), t("已领"), t("已核销"), t("领取率"), t("核销率")], ...couponRows()]],
    [t("邀请榜"), [["#", t("观众"), t("直接邀请"), t("全部层级")], ...inviteRows()]],
  ];
}

// A table's rows (the first is its header) in columns of equal width from (x, y); returns the
// height used (a dash stands for an empty table).
function drawTable(ctx, x, y, width, rows) {
  const col = width / rows[0].length;
  rows.forEach((row, i) => {
    ctx.font = `${i === 0 ? "bold " : ""}13px ${FONT}`;
    ctx.fillStyle = i === 0 ? MUTED : INK;
    row.forEach((value, j) => ctx.fillText(String(value), x + j * col, y + LINE * i + 14, col - 6));
  });
  if (rows.length === 1) {
    ctx.fillStyle = "#999";
    ctx.fillText("—", x, y + LINE + 14);
  }
  return LINE * Math.max(rows.length, 2);
}

function heading(ctx, text, x, y, size = 16) {
  ctx.fillStyle = INK;
  ctx.font = `bold ${size}px ${FONT}`;
  ctx.fillText(text, x, y);
}

const boxTitle = (id) => $(id).closest(".box").querySelector("h2").textContent;

async function exportPng() {
  const ratio = 2;
  const pad = 24;
  const parts = [];
  for (const id of Object.keys(OPTIONS)) {
    const instance = charts[id];
    const url = instance.getDataURL({ type: "png", pixelRatio: ratio, backgroundColor: "#fff" });
    parts.push({ title: boxTitle(id), img: await image(url), w: instance.getWidth(), h: instance.getHeight() });
  }
  const tables = reportTables();
  // As wide as the widest chart on screen (a desktop's half-width charts then sit side by side).
  const width = Math.max(960, ...parts.map((p) => p.w + 2 * pad));
  const inner = width - 2 * pad;
  const gap = 16;
  // Charts at their on-screen size (never blown up), packed side by side where they fit.
  const rowsOfCharts = [];
  for (const p of parts) {
    p.dw = Math.min(p.w, inner);
    p.dh = (p.h * p.dw) / p.w;
    const last = rowsOfCharts.at(-1);
    if (last && last.reduce((n, q) => n + q.dw + gap, 0) + p.dw <= inner) last.push(p);
    else rowsOfCharts.push([p]);
  }
  let height = pad + 36 + LINE * 2;
  for (const row of rowsOfCharts) height += 28 + Math.max(...row.map((p) => p.dh)) + 12;
  for (const [, rows] of tables) height += 28 + LINE * Math.max(rows.length, 2) + 12;
  const canvas = document.createElement("canvas");
  canvas.width = width * ratio;
  canvas.height = Math.ceil(height + pad) * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height + pad);
  let y = pad + 24;
  heading(ctx, $("report-title").textContent, pad, y, 22);
  ctx.font = `14px ${FONT}`;
  ctx.fillStyle = MUTED;
  y += LINE + 4;
  ctx.fillText($("report-when").textContent, pad, y);
  y += LINE;
  ctx.fillText(totals().map(([, label, value]) => `${label} ${value}`).join("   "), pad, y);
  y += 12;
  for (const row of rowsOfCharts) {
    y += 28;
    let x = pad;
    for (const p of row) {
      heading(ctx, p.title, x, y - 8);
      ctx.drawImage(p.img, x, y, p.dw, p.dh);
      x += p.dw + gap;
    }
    y += Math.max(...row.map((p) => p.dh)) + 12;
  }
  for (const [title, rows] of tables) {
    y += 28;
    heading(ctx, title, pad, y - 8);
    y += drawTable(ctx, pad, y, inner, rows) + 12;
  }
  download(canvas.toDataURL("image/png"), fmt(t("战报-{id}.png"), { id: report.room.id }));
}

// The PDF: A4 portrait, 12 mm margins. Every part (the heading with the figures, each chart
// with its title, each table, the recall's result) is drawn on a canvas PDF_WIDTH CSS pixels
// wide — text included, in the page's own fonts, so Chinese needs no font in the PDF — and
// placed as an image; a part that does not fit the rest of a page starts the next one. The
// charts are drawn again off screen at that width, so a phone's PDF is a desktop's.
const A4 = { width: 210, height: 297, margin: 12, footer: 8 };
const PDF_WIDTH = 720;
const PDF_CHART_HEIGHTS = {
  "chart-online": () => 300,
  // Four bars per product: taller with many products, never past one page (1026 px of 720).
  "chart-funnel": () => Math.min(900, Math.max(300, 80 + 48 * report.products.length)),
  "chart-leads": () => 260,
  "chart-chat": () => 220,
};
const TABLE_ROWS_PER_PART = 30;

function pdfPart(height, paint) {
  const ratio = 2;
  const canvas = document.createElement("canvas");
  canvas.width = PDF_WIDTH * ratio;
  canvas.height = Math.ceil(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, PDF_WIDTH, height);
  paint(ctx);
  return canvas;
}

async function chartForPdf(id) {
  const height = PDF_CHART_HEIGHTS[id]();
  const holder = document.createElement("div");
  holder.style.cssText = `position: fixed; left: -10000px; top: 0; width: ${PDF_WIDTH}px; height: ${height}px`;
  document.body.append(holder);
  const chart = globalThis.echarts.init(holder, null, { renderer: "canvas", width: PDF_WIDTH, height });
  try {
    chart.setOption({ animation: false, ...OPTIONS[id](false) });
    return await image(chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" }));
  } finally {
    chart.dispose();
    holder.remove();
  }
}

async function pdfParts() {
  const parts = [pdfPart(96, (ctx) => {
    heading(ctx, $("report-title").textContent, 0, 26, 22);
    ctx.font = `14px ${FONT}`;
    ctx.fillStyle = MUTED;
    ctx.fillText($("report-when").textContent, 0, 26 + LINE + 4, PDF_WIDTH);
    ctx.fillStyle = INK;
    ctx.fillText(totals().map(([, label, value]) => `${label} ${value}`).join("   "), 0, 26 + 2 * LINE + 8, PDF_WIDTH);
  })];
  for (const id of Object.keys(OPTIONS)) {
    const img = await chartForPdf(id);
    const note = $(id).closest(".box").querySelector("p.muted")?.textContent;
    const top = note ? 48 : 28;
    parts.push(pdfPart(top + img.height / 2 + 8, (ctx) => {
      heading(ctx, boxTitle(id), 0, 20);
      if (note) {
        ctx.font = `12px ${FONT}`;
        ctx.fillStyle = MUTED;
        ctx.fillText(note, 0, 40, PDF_WIDTH);
      }
      ctx.drawImage(img, 0, top, PDF_WIDTH, img.height / 2);
    }));
  }
  for (const [title, [head, ...body]] of reportTables()) {
    // A long table continues on the next part under its heading and header row again.
    for (let start = 0; start === 0 || start < body.length; start += TABLE_ROWS_PER_PART) {
      const rows = [head, ...body.slice(start, start + TABLE_ROWS_PER_PART)];
      parts.push(pdfPart(28 + LINE * Math.max(rows.length, 2) + 8, (ctx) => {
        heading(ctx, title, 0, 20);
        drawTable(ctx, 0, 28, PDF_WIDTH, rows);
      }));
    }
  }
  if (!$("recall-box").hidden) {
    const items = [...$("recall").children].map((item) =>
      `${item.querySelector("span").textContent} ${item.querySelector("b").textContent}`);
    parts.push(pdfPart(28 + LINE + 8, (ctx) => {
      heading(ctx, $("recall-box").querySelector("h2").textContent, 0, 20);
      ctx.font = `14px ${FONT}`;
      ctx.fillStyle = INK;
      ctx.fillText(items.join("   "), 0, 28 + 14, PDF_WIDTH);
    }));
  }
  return parts;
}

async function loadJsPdf() {
  if (!globalThis.jspdf) {
    await new Promise((resolve, reject) => {
      const script = el("script", { src: root.dataset.jspdf });
      script.onload = resolve;
      script.onerror = () => reject(new Error(t("PDF 组件加载失败")));
      document.head.append(script);
    });
  }
  return globalThis.jspdf.jsPDF;
}

async function exportPdf() {
  const JsPdf = await loadJsPdf();
  const doc = new JsPdf({ unit: "mm", format: "a4", orientation: "portrait", compress: true });
  const inner = A4.width - 2 * A4.margin;
  const bottom = A4.height - A4.margin - A4.footer;
  let y = A4.margin;
  for (const canvas of await pdfParts()) {
    const height = (canvas.height * inner) / canvas.width;
    if (y + height > bottom && y > A4.margin) {
      doc.addPage();
      y = A4.margin;
    }
    doc.addImage(canvas, "PNG", A4.margin, y, inner, height);
    y += height + 4;
  }
  // Page numbers: digits only, in the PDF's standard font.
  const pages = doc.getNumberOfPages();
  doc.setFontSize(9);
  doc.setTextColor(150);
  for (let page = 1; page <= pages; page += 1) {
    doc.setPage(page);
    doc.text(`${page} / ${pages}`, A4.width / 2, A4.height - A4.margin / 2, { align: "center" });
  }
  const url = URL.createObjectURL(doc.output("blob"));
  download(url, fmt(t("战报-{id}.pdf"), { id: report.room.id }));
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

for (const [id, run] of [["export-png", exportPng], ["export-pdf", exportPdf]]) {
  $(id).addEventListener("click", () => {
    $(id).disabled = true;
    run()
      .catch((error) => { $("report-error").textContent = error.message; })
      .finally(() => { $(id).disabled = false; });
  });
}

window.addEventListener("resize", () => {
  for (const instance of Object.values(charts)) instance.resize();
});

function start() {
  if (!token) { show("login"); return; }
  if (roomId) loadReport(); else loadPicker();
}

start();
