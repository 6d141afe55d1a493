// Campaign builder, report and journey list. Data comes from the API with the staff token
// shared with the sales workspace; every user-provided string is rendered with textContent.

import { t, fmt, lang } from "../shared/i18n.js";

const TOKEN_KEY = "qm.staff.token";
const state = { token: sessionStorage.getItem(TOKEN_KEY), current: null };

export const $ = (sel) => document.querySelector(sel);

export function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

export async function api(path, options = {}) {
  const headers = { Authorization: `Token ${state.token}` };
  if (options.body) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) {
    logout();
    throw new Error("not_authenticated");
  }
  const body = res.status === 204 ? null : await res.json();
  if (!res.ok) {
    const err = new Error(body && body.message ? body.message : res.statusText);
    err.body = body;
    throw err;
  }
  return body;
}

function logout() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("#app").hidden = true;
  $("#login").hidden = false;
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const res = await fetch("/api/v1/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
  });
  const data = await res.json();
  if (!res.ok) {
    $("#login-error").textContent = data.message || t("登录失败");
    return;
  }
  state.token = data.token;
  sessionStorage.setItem(TOKEN_KEY, data.token);
  start();
});

for (const button of document.querySelectorAll(".tabs button")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tabs button")) other.classList.remove("on");
    button.classList.add("on");
    $("#tab-campaigns").hidden = button.dataset.tab !== "campaigns";
    $("#tab-journeys").hidden = button.dataset.tab !== "journeys";
    $("#tab-templates").hidden = button.dataset.tab !== "templates";
    if (button.dataset.tab === "templates") loadTemplates();
    if (button.dataset.tab === "journeys") loadJourneys();
  });
}

function fillSelect(select, items, label) {
  const keep = [...select.querySelectorAll("option")].filter((o) => o.value === "");
  select.replaceChildren(...keep);
  for (const item of items) {
    const option = el("option", label(item));
    option.value = item.id;
    select.append(option);
  }
}

async function loadChoices() {
  const [segments, templates, rooms] = await Promise.all([
    api("/api/v1/segments?page_size=200"),
    // Only what a segment send may use: marketing templates for customers (never a service
    // template or a staff notice — the API refuses them too).
    api("/api/v1/templates?for=campaign&page_size=200"),
    api("/api/v1/rooms?status=ended&page_size=100"),
  ]);
  const roomSelect = $("#source-room-select");
  const room = roomSelect.value;
  fillSelect(roomSelect, rooms.results || rooms, (r) => r.title);
  roomSelect.value = room;
  const segmentSelect = $("#segment-select");
  segmentSelect.replaceChildren(el("option", t("全部线索")));
  segmentSelect.firstChild.value = "";
  fillSelect(segmentSelect, segments.results || segments, (s) => s.name);
  const channel = $("#builder [name=channel]").value;
  // The builder fills {nickname} (the person's), {link} (the tracked link) and, with a source
  // room, each person's {product}/{clip_url}/{coupon_expiry}: a copy with any other
  // placeholder needs campaign params, which only the API takes.
  const recall = Boolean($("#source-room-select").value);
  $("#fallback-label").hidden = !recall;
  const names = ["nickname", "link", ...(recall ? ["product", "clip_url", "coupon_expiry"] : [])];
  const fillable = (tpl) => [...tpl.body.matchAll(/\{(\w+)\}/g)].every((m) => names.includes(m[1]));
  const usable = (templates.results || []).filter((t) => t.channel === channel && fillable(t));
  for (const select of document.querySelectorAll(".template-select")) {
    fillSelect(select, usable, (tpl) => tpl.name);
  }
  // No copy for this channel: say so and lead to the templates tab (never an empty picker).
  $("#copy-empty").hidden = usable.length > 0;
  // The channel's own rule, where the send policy narrows who it reaches.
  const rule = BUILDER_RULES[channel] || "";
  $("#builder-channel-rule").textContent = rule;
  $("#builder-channel-rule").hidden = !rule;
}

const BUILDER_RULES = {
  wechat_customer: t("公众号客服消息只发给48小时内与公众号互动过的关注者（每人窗口内最多5条），其余记为「超出48小时窗口」；从本组织的公众号发出。"),
  wechat_mass: t("公众号群发：服务号每人每月最多4次；发给关注者。"),
};

$("#copy-create").addEventListener("click", () => {
  const channel = $("#builder [name=channel]").value;
  $('.tabs button[data-tab="templates"]').click();
  $("#template-form [name=channel]").value = channel;
  $("#template-form [name=channel]").dispatchEvent(new Event("change"));
  $("#template-form [name=name]").focus();
});

// WeChat mass messages may go to one of the official account's user tags (WeChat tags/get,
// read through the API) or, with no tag, to the openid list of the audience.
const wechat = { account: null, tags: new Map() };

function tagOption(value, label) {
  const node = el("option", label);
  node.value = value;
  return node;
}

function tagLabel(id) {
  const name = wechat.tags.get(id);
  return name ? fmt(t("{name}（ID {id}）"), { name, id }) : fmt(t("ID {id}"), { id });
}

async function loadWeChatTags(accountId) {
  const query = accountId ? `?account=${encodeURIComponent(accountId)}` : "";
  const data = await api(`/api/v1/wechat/tags${query}`);
  for (const tag of data.tags) wechat.tags.set(tag.id, tag.name);
  return data;
}

async function loadWeChatTarget() {
  const fieldset = $("#wechat-target");
  fieldset.hidden = $("#builder [name=channel]").value !== "wechat_mass";
  if (fieldset.hidden) return;
  const select = $("#wechat-tag-select");
  select.replaceChildren(tagOption("", t("不按标签（按 openid 列表发送）")));
  $("#wechat-tag-error").textContent = "";
  $("#wechat-account-name").textContent = "";
  try {
    const data = await loadWeChatTags(null);
    wechat.account = data.account;
    $("#wechat-account-name").textContent = fmt(t("公众号：{name}"), { name: data.account_name });
    for (const tag of data.tags) {
      select.append(tagOption(tag.id, fmt(t("{name}（{count} 人）"), { name: tag.name, count: tag.count })));
    }
  } catch (err) {
    $("#wechat-tag-error").textContent = err.message;
  }
}

// Fixed split or 自动优化 (a bandit on a goal): the goal and its explanation only for the latter.
function showVariantMode() {
  const bandit = $("#variant-mode-select").value === "bandit";
  $("#bandit-goal-label").hidden = !bandit;
  $("#bandit-hint").hidden = !bandit;
}
$("#variant-mode-select").addEventListener("change", showVariantMode);

$("#source-room-select").addEventListener("change", () => loadChoices());
$("#builder [name=channel]").addEventListener("change", () => {
  loadChoices();
  loadWeChatTarget();
});

$("#builder").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const variants = [];
  if (form.get("variant_price")) {
    variants.push({
      name: "价格敏感",
      template: Number(form.get("variant_price")),
      condition: { field: "income_level", op: "eq", value: "low" },
    });
  }
  variants.push({ name: "A", template: Number(form.get("variant_a")) });
  if (form.get("variant_b")) variants.push({ name: "B", template: Number(form.get("variant_b")) });
  // A recall: every copy falls back to the same one for people the room cannot fill it for.
  const fallback = form.get("source_room") && form.get("variant_fallback");
  if (fallback) for (const v of variants) v.fallback_template = Number(fallback);
  const body = {
    name: form.get("name"),
    channel: form.get("channel"),
    segment: form.get("segment") ? Number(form.get("segment")) : null,
    variants,
    holdout_pct: Number(form.get("holdout_pct") || 0),
    send_timing: form.get("best_hour") ? "best_hour" : "fixed",
    fallback_hour: Number(form.get("fallback_hour") || 10),
  };
  if (form.get("best_hour")) body.untimed_pct = Number(form.get("untimed_pct") ?? 10);
  if (form.get("variant_mode") === "bandit") {
    body.variant_mode = "bandit";
    body.bandit_goal = form.get("bandit_goal");
  }
  if (form.get("source_room")) body.source_room = Number(form.get("source_room"));
  if (form.get("link_url")) body.link_url = form.get("link_url");
  if (body.channel === "wechat_mass") {
    body.wechat_account = wechat.account;
    body.wechat_tag_id = form.get("wechat_tag_id") ? Number(form.get("wechat_tag_id")) : null;
  }
  $("#builder-error").textContent = "";
  try {
    const campaign = await api("/api/v1/campaigns", { method: "POST", body: JSON.stringify(body) });
    event.target.reset();
    showVariantMode();
    $("#best-hour-panel").hidden = true;
    loadWeChatTarget();
    await loadCampaigns();
    openReport(campaign);
  } catch (err) {
    const fields = err.body && err.body.fields ? JSON.stringify(err.body.fields) : "";
    $("#builder-error").textContent = `${err.message} ${fields}`;
  }
});

// 智能节奏: how many of the audience each allowed Beijing hour would get, and what share has
// enough history of its own (POST campaigns/send-time-preview; Braze's Intelligent Timing
// shows the same before launch).
const hh = (hour) => `${String(hour).padStart(2, "0")}:00`;

async function loadTimingPreview() {
  const panel = $("#best-hour-panel");
  panel.hidden = !$("#best-hour").checked;
  if (panel.hidden) return;
  const form = $("#builder");
  const segment = form.querySelector("[name=segment]").value;
  const body = {
    segment: segment ? Number(segment) : null,
    channel: form.querySelector("[name=channel]").value,
    fallback_hour: Math.min(23, Math.max(0, Number(form.querySelector("[name=fallback_hour]").value) || 0)),
  };
  const summary = $("#best-hour-summary");
  const chart = $("#best-hour-chart");
  try {
    const p = await api("/api/v1/campaigns/send-time-preview", { method: "POST", body: JSON.stringify(body) });
    summary.textContent = fmt(
      t("{total} 人中 {with} 人有活跃记录，{enough} 人（{share}）记录充足（至少 {min} 次）；没有记录的人在 {fallback} 发送。随机 {untimed}% 仍按统一时间发送，用来衡量提升。"),
      {
        total: p.total, with: p.with_history, enough: p.enough_history, share: pct(p.enough_share),
        min: p.min_history, fallback: hh(p.fallback_hour),
        // The share this campaign will send untimed (the builder's field; the server's default).
        untimed: form.querySelector("[name=untimed_pct]").value || p.untimed_pct,
      },
    );
    const max = Math.max(1, ...p.hours.map((h) => h.count));
    chart.replaceChildren(...p.hours.filter((h) => h.hour >= p.allowed[0] && h.hour < p.allowed[1]).map((h) => {
      const row = el("div", null, "row");
      row.dataset.hour = String(h.hour);
      const bar = el("div", null, "bar");
      bar.style.width = `${Math.round((h.count / max) * 70)}%`;
      row.append(el("span", hh(h.hour), "label"), bar, el("span", h.count, "n"));
      return row;
    }));
  } catch (err) {
    summary.textContent = err.message;
    chart.replaceChildren();
  }
}

for (const sel of ["#best-hour", "#segment-select", "#builder [name=channel]", "#builder [name=fallback_hour]"]) {
  $(sel).addEventListener("change", () => { loadTimingPreview(); });
}

const STATUS = { draft: t("草稿"), planned: t("已规划"), sending: t("发送中"), done: t("已完成") };

async function loadCampaigns() {
  const data = await api("/api/v1/campaigns?page_size=100");
  const list = $("#campaign-list");
  list.replaceChildren();
  for (const campaign of data.results) {
    const item = el("li", campaign.name);
    item.dataset.campaign = String(campaign.id);
    item.append(el("small", `${STATUS[campaign.status] || campaign.status} · ${campaign.channel}`));
    item.addEventListener("click", () => openReport(campaign));
    list.append(item);
  }
}

const FUNNEL = [
  ["planned", t("计划")],
  ["suppressed", t("拦截")],
  ["holdout", t("对照组")],
  ["deferred", t("顺延")],
  ["sent", t("已发送")],
  ["delivered", t("已送达")],
  ["failed", t("失败")],
  ["unknown", t("待核实")],
  ["clicked", t("点击")],
  ["converted", t("转化")],
];

const REASONS = {
  no_address: t("无联系方式"),
  no_consent: t("未授权营销"),
  opted_out: t("已退订"),
  frequency_cap: t("频次上限"),
  channel_rule: t("渠道规则"),
  template_not_approved: t("模板未审核"),
  outside_window: t("超出48小时窗口"),
  window_quota: t("客服消息已满"),
  mass_quota: t("本月群发已满"),
  no_subscription: t("无订阅授权"),
  unsubscribed: t("已取关"),
  erased: t("已删除"),
  profiling_refused: t("拒绝个性化"),
};

const pct = (rate) => rate.toLocaleString(lang(), { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
const points = (rate) => (rate * 100).toLocaleString(lang(), { minimumFractionDigits: 1, maximumFractionDigits: 1 });

async function openReport(campaign) {
  state.current = campaign;
  $("#report").hidden = false;
  $("#report-title").textContent = campaign.name;
  $("#launch-result").textContent = "";
  $("#report-target").textContent = "";
  if (campaign.wechat_tag_id) {
    if (!wechat.tags.has(campaign.wechat_tag_id)) await loadWeChatTags(campaign.wechat_account).catch(() => {});
    $("#report-target").textContent = fmt(t("按用户标签群发：{tag}"), { tag: tagLabel(campaign.wechat_tag_id) });
  } else if (campaign.channel === "wechat_mass") {
    $("#report-target").textContent = t("按 openid 列表群发（未选标签）");
  }
  const stats = await api(`/api/v1/campaigns/${campaign.id}/stats`);
  // The campaign finishes by itself once every row is final: show the live status.
  const finished = stats.finished_at ? ` · ${new Date(stats.finished_at).toLocaleString(lang())}` : "";
  // One status on the page: the list was loaded earlier and the campaign may have finished
  // since, so the list row takes the status the report just read.
  if (stats.status !== campaign.status) {
    campaign.status = stats.status;
    const small = $(`#campaign-list li[data-campaign="${campaign.id}"] small`);
    if (small) small.textContent = `${STATUS[campaign.status] || campaign.status} · ${campaign.channel}`;
  }
  $("#report-title").textContent = fmt(t("{name}（{status}）"), { name: campaign.name, status: (STATUS[stats.status] || stats.status) + finished });
  const max = Math.max(1, stats.planned);
  const funnel = $("#funnel");
  funnel.replaceChildren();
  for (const [key, label] of FUNNEL) {
    const row = el("div", null, "row");
    const bar = el("div", null, "bar");
    bar.style.width = `${Math.round((stats[key] / max) * 70)}%`;
    row.append(el("span", label, "label"), bar, el("span", stats[key], "n"));
    funnel.append(row);
  }
  const reasons = $("#reasons");
  reasons.replaceChildren();
  for (const [reason, n] of Object.entries(stats.suppressed_by_reason)) {
    reasons.append(el("li", fmt(t("{reason}：{n}"), { reason: REASONS[reason] || reason, n })));
  }
  const u = stats.uplift;
  // Intent to treat: both arms are everyone assigned at planning, whatever happened at send.
  // Below the minimum arm size the server gives no estimate: say why, never "0.0 (0.0 ~ 0.0)".
  $("#uplift").textContent =
    !u.enough
      ? fmt(t("样本不足：实验组 {treated} 人、对照组 {holdout} 人，每组至少 {min} 人才计算提升"), {
          treated: u.treatment_n, holdout: u.holdout_n, min: u.min_arm,
        })
      : fmt(t("转化率 {treated} vs 对照组 {holdout}，提升 {uplift} 个百分点（95% 区间 {low} ~ {high}）"), {
          treated: pct(u.treatment_rate), holdout: pct(u.holdout_rate), uplift: points(u.uplift),
          low: points(u.ci95[0]), high: points(u.ci95[1]),
        });
  // What happened at send, per arm: treated people suppressed at send stay in their arm.
  const atSend = (u.at_send && u.at_send.treatment.suppressed_by_reason) || {};
  const stopped = Object.values(atSend).reduce((a, b) => a + b, 0);
  if (stopped) {
    $("#uplift").textContent += " " + fmt(t("（实验组中发送时被拦截 {n} 人，仍计入实验组）"), { n: stopped });
  }
  // 智能节奏: the goal rate of people sent at their own hour against the random untimed share.
  const timing = stats.timing;
  $("#timing-report").hidden = !timing;
  if (timing) {
    $("#timing-uplift").textContent = !timing.enough
      ? fmt(t("样本不足：智能时刻 {timed} 人、统一时刻 {untimed} 人，每组至少 {min} 人才比较"), {
          timed: timing.treatment_n, untimed: timing.holdout_n, min: timing.min_arm,
        })
      : fmt(t("转化率：智能时刻 {timed} vs 统一时刻 {untimed}，提升 {uplift} 个百分点（95% 区间 {low} ~ {high}）"), {
          timed: pct(timing.treatment_rate), untimed: pct(timing.holdout_rate), uplift: points(timing.uplift),
          low: points(timing.ci95[0]), high: points(timing.ci95[1]),
        });
  }
  // Per copy: counts always, rates only from the minimum reached per copy (else noise).
  $("#variant-rows").replaceChildren(...(stats.variants || []).map((v) => {
    const tr = document.createElement("tr");
    tr.dataset.variant = String(v.id);
    const rates = v.enough
      ? `${pct(v.click_rate)} / ${pct(v.conversion_rate)}`
      : fmt(t("样本不足（已发送 {n} 人，至少 {min} 人）"), { n: v.sent, min: v.min_sent });
    for (const text of [`${v.name} · ${v.template}`, v.sent, v.delivered, v.clicked, v.converted, rates]) tr.append(el("td", text));
    return tr;
  }));
  await loadBandit(campaign, stats).catch(() => {});
  await loadOutbox(campaign).catch(() => {});
}

// --- 自动优化: each copy's goal results, its current share and the allocation history -------

const GOALS = { click: t("点击"), claim: t("领券"), redemption: t("核销"), reply: t("回复") };
let banditChart = null;

async function loadBandit(campaign, stats) {
  const section = $("#bandit");
  section.hidden = true; // shown once filled for this campaign
  if (campaign.variant_mode !== "bandit") return;
  const data = await api(`/api/v1/campaigns/${campaign.id}/allocations`);
  if (state.current !== campaign) return; // another report was opened meanwhile
  section.hidden = false;
  $("#bandit-goal").textContent = fmt(t("优化目标：{goal}。对照组不参与分配，也不发送。"), { goal: GOALS[data.bandit_goal] || data.bandit_goal });
  // The copies the bandit chooses among: those of the latest allocation (before the first
  // one, every copy); a personalised copy keeps its own rule and is not shown here.
  const latest = data.allocations[data.allocations.length - 1];
  const chosen = latest ? new Set(latest.arms.map((a) => a.variant)) : null;
  const arms = (stats.variants || []).filter((v) => !chosen || chosen.has(v.id));
  $("#bandit-arm-rows").replaceChildren(...arms.map((v) => {
    const tr = document.createElement("tr");
    tr.dataset.variant = String(v.id);
    const share = v.share === null || v.share === undefined ? "—" : pct(v.share);
    for (const text of [`${v.name} · ${v.template}`, v.sent, v.goal_successes, share]) tr.append(el("td", text));
    return tr;
  }));
  const history = data.allocations;
  $("#bandit-empty").hidden = history.length > 0;
  const when = (at) => new Date(at).toLocaleString(lang(), { hour12: false });
  $("#bandit-history-rows").replaceChildren(...history.slice().reverse().map((snap) => {
    const tr = document.createElement("tr");
    tr.dataset.allocation = String(snap.id);
    const arms = snap.arms.map((a) => fmt(t("{name} {successes}/{trials} → {share}"), { name: a.name, successes: a.successes, trials: a.trials, share: pct(a.share) })).join(t("；"));
    for (const text of [when(snap.at), snap.batch_size, arms]) tr.append(el("td", text));
    return tr;
  }));
  drawBanditChart(history, when);
}

function drawBanditChart(history, when) {
  const box = $("#bandit-chart");
  box.hidden = history.length === 0 || !globalThis.echarts;
  if (box.hidden) return;
  if (banditChart) banditChart.dispose();
  banditChart = globalThis.echarts.init(box, null, { renderer: "canvas" });
  const names = history[history.length - 1].arms.map((a) => a.name);
  banditChart.setOption({
    animation: false,
    tooltip: { trigger: "axis", valueFormatter: (v) => `${v}%` },
    legend: { top: 0 },
    grid: { left: 40, right: 12, top: 30, bottom: 30 },
    xAxis: { type: "category", data: history.map((snap, i) => `#${i + 1}`) },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
    series: names.map((name) => ({
      name,
      type: "line",
      stack: "share",
      areaStyle: {},
      symbol: "none",
      data: history.map((snap) => {
        const arm = snap.arms.find((a) => a.name === name);
        return arm ? Math.round(arm.share * 1000) / 10 : 0;
      }),
    })),
  });
  box.dataset.points = String(history.length);
  box.title = history.length ? fmt(t("最近一次分配：{at}"), { at: when(history[history.length - 1].at) }) : "";
}

window.addEventListener("resize", () => { if (banditChart) banditChart.resize(); });

// --- the outbox: one row per person and channel, read-only -------------------------------

const DELIVERY = {
  pending: t("待发送"), sending: t("发送中"), sent: t("已发送"), delivered: t("已送达"),
  failed: t("失败"), unknown: t("状态未知"), suppressed: t("已拦截"), holdout: t("对照组"),
};
const outbox = { campaign: null, page: 1, shown: 0 };

async function loadOutbox(campaign, page = 1) {
  const data = await api(`/api/v1/campaigns/${campaign.id}/deliveries?page=${page}&page_size=50`);
  if (state.current !== campaign) return; // another report was opened meanwhile
  const body = $("#outbox-rows");
  if (page === 1) { body.replaceChildren(); outbox.shown = 0; }
  Object.assign(outbox, { campaign, page });
  for (const row of data.results) {
    const tr = document.createElement("tr");
    tr.dataset.delivery = String(row.id);
    const status = (DELIVERY[row.status] || row.status) + (row.reason ? ` · ${REASONS[row.reason] || row.reason}` : "");
    const sent = row.sent_at ? new Date(row.sent_at).toLocaleString(lang(), { hour12: false }) : "—";
    for (const text of [`#${row.contact ?? "—"}`, status, row.provider_message_id || "—", row.dedup_key, sent]) {
      tr.append(el("td", text));
    }
    tr.append(el("td", row.rendered || "—", "rendered")); // the text this person read
    body.append(tr);
  }
  outbox.shown += data.results.length;
  $("#outbox-count").textContent = fmt(t("共 {n} 条，已显示 {shown} 条"), { n: data.count, shown: outbox.shown });
  $("#outbox-more").hidden = !data.next;
}

$("#outbox-more").addEventListener("click", () => {
  if (outbox.campaign) loadOutbox(outbox.campaign, outbox.page + 1).catch(() => {});
});

$("#launch").addEventListener("click", async () => {
  if (!state.current) return;
  try {
    const result = await api(`/api/v1/campaigns/${state.current.id}/launch`, { method: "POST" });
    $("#launch-result").textContent = fmt(t("新增 {n} 条发送记录"), { n: result.planned });
    setTimeout(() => openReport(state.current), 1500);
    loadCampaigns();
  } catch (err) {
    $("#launch-result").textContent = err.message;
  }
});

const OUTCOMES = { waited: t("等待结束"), passed: t("通过"), exited: t("退出"), queued: t("已发送"), notified: t("已通知"), holdout: t("对照组（未发送）") };

async function loadJourneys() {
  const journeys = await api("/api/v1/journeys");
  const list = $("#journey-list");
  list.replaceChildren();
  for (const journey of journeys) {
    const item = el("li", journey.name);
    const members = Object.entries(journey.members)
      .map(([k, v]) => `${k} ${v}`)
      .join(" · ");
    item.append(el("small", fmt(t("触发：{event} · 成员：{members}"), { event: journey.trigger_event, members: members || 0 })));
    const steps = el("ol");
    journey.steps.forEach((step, index) => {
      const counts = journey.step_counts
        .filter((c) => c.step === index)
        .map((c) => `${OUTCOMES[c.outcome] || c.outcome} ${c.count}`)
        .join(t("，"));
      steps.append(el("li", `${step.type}${step.template ? fmt(t("（{template}）"), { template: step.template }) : ""} — ${counts || 0}`));
    });
    item.append(steps);
    list.append(item);
  }
}

async function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  await loadChoices();
  loadWeChatTarget();
  await loadCampaigns();
}

if (state.token) start().catch(() => logout());
else logout();

// --- message templates per channel, with the channel's rules shown -----------------------

const CHANNEL_RULES = {
  sms: t("短信：需服务商审核通过的签名和模板；营销短信须有短信营销授权并带退订方式（回T退订）；70字计一条。"),
  wechat_template: t("公众号模板消息：只能发服务通知，不得用于营销；需要用户关注公众号。"),
  wechat_customer: t("公众号客服消息：只能在用户48小时内与公众号互动后发送。"),
  wechat_mass: t("公众号群发：订阅号每天1次、服务号每月4次；发给关注者。"),
  mp_subscribe: t("小程序订阅消息：用户每订阅一次可发送一条；内容须与订阅的模板一致。"),
};
const TEMPLATE_CLASS = { marketing: t("营销"), service: t("服务通知") };
const APPROVAL = { approved: t("已审核"), pending: t("待审核"), rejected: t("已驳回") };

function showChannelRules() {
  $("#channel-rules").textContent = CHANNEL_RULES[$("#template-form [name=channel]").value] || "";
}
$("#template-form [name=channel]").addEventListener("change", showChannelRules);
showChannelRules();

async function loadTemplates() {
  const data = await api("/api/v1/templates?page_size=100");
  $("#template-list").replaceChildren(...data.results.map((tpl) => {
    const li = el("li", tpl.name);
    li.dataset.template = String(tpl.id);
    li.append(el("small", `${TEMPLATE_CLASS[tpl.message_class] || tpl.message_class} · ${APPROVAL[tpl.approval_status] || tpl.approval_status} · ${tpl.body}`));
    return li;
  }));
}

$("#template-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  for (const box of form.querySelectorAll(".err[data-for]")) box.textContent = "";
  const data = new FormData(form);
  const body = {};
  for (const name of ["name", "channel", "message_class", "body", "provider_template_id"]) {
    const value = String(data.get(name) || "").trim();
    if (value || name !== "provider_template_id") body[name] = value; // optional: omit when empty
  }
  try {
    await api("/api/v1/templates", { method: "POST", body: JSON.stringify(body) });
  } catch (err) {
    const fields = (err.body && err.body.fields) || {};
    let shown = false;
    for (const [name, msgs] of Object.entries(fields)) {
      const box = form.querySelector(`.err[data-for="${name}"]`);
      if (box) { box.textContent = [].concat(msgs).join(" "); shown = true; }
    }
    if (!shown) form.querySelector('.err[data-for="_"]').textContent = err.message;
    return;
  }
  form.reset();
  showChannelRules();
  loadTemplates();
  loadChoices(); // the builder offers the new copy at once
});
