// Journey builder (自动化旅程): create a journey, edit its trigger and steps, activate, pause,
// delete. A form per step type; the API validates and names the bad part (e.g.
// "steps[2].seconds"), which is shown next to that step. Every user-provided string is
// rendered with textContent (strict CSP: no inline script, no eval).
import { t, fmt, lang } from "../shared/i18n.js";
// The campaigns page's helpers: one signed-in API client (a 401 signs out) for both tabs.
import { $, api, el } from "./campaigns.js";

const jb = { journeys: [], templates: [], current: null };

function option(value, label, selected) {
  const node = el("option", label);
  node.value = value;
  if (selected) node.selected = true;
  return node;
}

// Trigger events: the CRM's event log plus the two synthetic triggers.
function triggerEvents() {
  return [
    ["room.reserve", t("预约直播")],
    ["reservation.due", t("预约的直播即将开始")],
    ["room.join", t("进入直播间")],
    ["room.leave", t("离开直播间")],
    ["chat", t("发言")],
    ["like", t("点赞")],
    ["follow", t("关注主播")],
    ["product.click", t("点击商品")],
    ["coupon.claim", t("领取优惠券")],
    ["coupon.redeem", t("核销优惠券")],
    ["order", t("下单")],
    ["share", t("分享")],
    ["invite.accepted", t("邀请成功")],
    ["replay.watch", t("观看回放")],
    ["oa.subscribe", t("关注公众号")],
    ["form.submit", t("提交表单")],
    ["grade.changed", t("线索等级变化")],
  ];
}

function conditionFields() {
  return [
    ["gender", t("性别")],
    ["income_level", t("收入水平")],
    ["grade", t("线索等级")],
    ["city", t("城市")],
    ["province", t("省份")],
    ["age", t("年龄")],
    ["score", t("评分")],
    ["tags", t("标签")],
    ["status", t("跟进状态")],
  ];
}

function conditionOps() {
  return [
    ["eq", t("等于")],
    ["ne", t("不等于")],
    ["gte", t("大于等于")],
    ["lte", t("小于等于")],
    ["contains", t("包含（标签）")],
  ];
}

function stepTypes() {
  return [
    ["wait", t("等待一段时间")],
    ["wait_before_room_start", t("等到开播前")],
    ["wait_room_end", t("等到直播结束后")],
    ["wait_before_coupon_expiry", t("等到优惠券到期前")],
    ["exit_if_event", t("若已发生某事件则退出")],
    ["branch", t("条件分支")],
    ["exit_unless", t("不满足条件则退出")],
    ["send", t("发送消息")],
    ["tag", t("打标签")],
    ["assign_owner", t("分配负责人")],
    ["create_task", t("创建跟进任务")],
    ["notify_owner", t("通知负责人")],
  ];
}

// -- one condition row (field / op / value) ------------------------------------------------

function conditionRow(container, condition) {
  container.replaceChildren();
  const row = el("div", null, "jb-row");
  const field = el("select");
  field.name = "cond_field";
  field.append(option("", t("不限")));
  for (const [value, label] of conditionFields()) {
    field.append(option(value, label, condition && condition.field === value));
  }
  const op = el("select");
  op.name = "cond_op";
  for (const [value, label] of conditionOps()) {
    op.append(option(value, label, condition && condition.op === value));
  }
  const value = el("input");
  value.name = "cond_value";
  value.placeholder = t("值，如 female、A、上海");
  if (condition && condition.value !== undefined) value.value = String(condition.value);
  row.append(labelled(t("字段"), field), labelled(t("比较"), op), labelled(t("值"), value));
  container.append(row);
}

function readCondition(container) {
  const field = container.querySelector("[name=cond_field]");
  if (!field || !field.value) return null;
  const raw = container.querySelector("[name=cond_value]").value.trim();
  const numeric = ["age", "score"].includes(field.value) && raw !== "" && !Number.isNaN(Number(raw));
  return {
    field: field.value,
    op: container.querySelector("[name=cond_op]").value,
    value: numeric ? Number(raw) : raw,
  };
}

function labelled(text, input) {
  const label = el("label", text);
  label.append(input);
  return label;
}

// -- steps -----------------------------------------------------------------------------------

function numberInput(name, value, min) {
  const input = el("input");
  input.type = "number";
  input.name = name;
  input.min = String(min);
  input.value = value === undefined || value === null ? "" : String(value);
  return input;
}

function textInput(name, value) {
  const input = el("input");
  input.name = name;
  input.maxLength = 100;
  input.value = value || "";
  return input;
}

function templateSelect(name, value, channel, optional) {
  const select = el("select");
  select.name = name;
  if (optional) select.append(option("", t("不发送")));
  for (const template of jb.templates) {
    if (channel && template.channel !== channel) continue;
    const label = fmt(t("{name}（{key}）"), { name: template.name, key: template.key });
    select.append(option(template.key, label, template.key === value));
  }
  return select;
}

function eventSelect(name, value) {
  const select = el("select");
  select.name = name;
  for (const [event, label] of triggerEvents()) {
    if (event === "grade.changed" || event === "reservation.due") continue;
    select.append(option(event, label, event === value));
  }
  return select;
}

// The inputs each step type shows, and how they read back into the API's step object.
function stepFields(type, step) {
  const fields = el("div", null, "jb-row");
  const add = (label, input) => fields.append(labelled(label, input));
  if (type === "wait") add(t("分钟"), numberInput("minutes", step.seconds ? step.seconds / 60 : 60, 1));
  if (type === "wait_before_room_start")
    add(t("开播前（分钟）"), numberInput("minutes", step.seconds !== undefined ? step.seconds / 60 : 10, 0));
  if (type === "wait_room_end")
    add(t("结束后（分钟）"), numberInput("minutes", step.seconds !== undefined ? step.seconds / 60 : 30, 0));
  if (type === "wait_before_coupon_expiry")
    add(t("到期前（小时）"), numberInput("hours", step.seconds !== undefined ? step.seconds / 3600 : 24, 0));
  if (type === "exit_if_event") {
    add(t("事件"), eventSelect("event", step.event));
    const same = el("input");
    same.type = "checkbox";
    same.name = "same_room";
    same.checked = Boolean(step.same_room);
    add(t("仅限同一直播间"), same);
  }
  if (type === "branch" || type === "exit_unless") {
    const box = el("div", null, "jb-cond");
    conditionRow(box, step.condition);
    fields.append(box);
  }
  if (type === "branch") {
    add(t("不满足时跳到第几步（末尾 = 步骤数 + 1）"), numberInput("else_goto", step.else_goto !== undefined ? step.else_goto + 1 : "", 1));
  }
  if (type === "send") {
    add(t("模板"), templateSelect("template", step.template, null, false));
    sendExperimentFields(fields, step);
  }
  if (type === "tag") add(t("标签"), textInput("tag", step.tag));
  if (type === "create_task") {
    add(t("任务标题"), textInput("title", step.title));
    add(t("期限（小时）"), numberInput("hours", step.hours || 2, 1));
  }
  if (type === "notify_owner") {
    add(t("通知标题"), textInput("title", step.title));
    add(t("公众号模板（关注公众号的负责人）"), templateSelect("wechat_template", step.wechat_template, "wechat_template", true));
    add(t("短信模板（其余负责人）"), templateSelect("sms_template", step.sms_template, "sms", true));
  }
  return fields;
}

// A send step's experiments (campaigns/services/bandit.py, send_time.py): more copies split
// evenly or by 自动优化 on a goal, a holdout never sent, and 智能节奏 with its untimed share.
const MAX_VARIANTS = 2;
const UNTIMED_DEFAULT = 10; // send_time.UNTIMED_PCT: the server's default share

function goalChoices() {
  return [
    ["click", t("点击")],
    ["claim", t("领券")],
    ["redemption", t("核销")],
    ["reply", t("回复")],
  ];
}

function sendExperimentFields(fields, step) {
  const add = (label, input, cls) => {
    const node = labelled(label, input);
    if (cls) node.classList.add(cls);
    fields.append(node);
    return node;
  };
  const variants = step.variants || [];
  for (let i = 0; i < MAX_VARIANTS; i++) {
    add(fmt(t("文案 {letter}"), { letter: "BC"[i] }), templateSelect(`variant_${i}`, variants[i], null, true));
  }
  const mode = el("select");
  mode.name = "variant_mode";
  mode.append(option("fixed", t("固定比例（平分）"), step.variant_mode !== "bandit"));
  mode.append(option("bandit", t("自动优化"), step.variant_mode === "bandit"));
  add(t("文案分配"), mode);
  const goal = el("select");
  goal.name = "bandit_goal";
  for (const [value, label] of goalChoices()) goal.append(option(value, label, step.bandit_goal === value));
  const goalLabel = add(t("优化目标"), goal, "jb-goal");
  add(t("本步对照组 %（不发送）"), numberInput("step_holdout_pct", step.holdout_pct || 0, 0));
  // 智能节奏: the member receives it at their own best hour (campaigns/services/send_time.py).
  const best = el("input");
  best.type = "checkbox";
  best.name = "best_hour";
  best.checked = Boolean(step.best_hour);
  add(t("智能节奏（按此人最常活跃的时刻发送）"), best);
  const untimed = numberInput("untimed_pct", step.untimed_pct ?? UNTIMED_DEFAULT, 0);
  untimed.max = "50";
  const untimedLabel = add(t("随机对照：立即发送的比例 %"), untimed, "jb-untimed");
  const sync = () => {
    goalLabel.hidden = mode.value !== "bandit";
    untimedLabel.hidden = !best.checked;
  };
  mode.addEventListener("change", sync);
  best.addEventListener("change", sync);
  sync();
}

function readSendExperiment(item, step, value) {
  const variants = [];
  for (let i = 0; i < MAX_VARIANTS; i++) if (value(`variant_${i}`)) variants.push(value(`variant_${i}`));
  if (variants.length) step.variants = variants;
  if (value("variant_mode") === "bandit") {
    step.variant_mode = "bandit";
    step.bandit_goal = value("bandit_goal");
  }
  const holdout = value("step_holdout_pct");
  if (holdout !== "" && Number(holdout) !== 0) step.holdout_pct = Number(holdout);
  if (item.querySelector("[name=best_hour]").checked) {
    step.best_hour = true;
    const untimed = value("untimed_pct");
    if (untimed !== "" && Number(untimed) !== UNTIMED_DEFAULT) step.untimed_pct = Number(untimed);
  }
}

function readStep(item) {
  const type = item.dataset.type;
  const value = (name) => {
    const input = item.querySelector(`[name=${name}]`);
    return input ? input.value.trim() : "";
  };
  const number = (name) => Number(value(name));
  const step = { type };
  if (type === "wait" || type === "wait_before_room_start" || type === "wait_room_end")
    step.seconds = Math.round(number("minutes") * 60);
  if (type === "wait_before_coupon_expiry") step.seconds = Math.round(number("hours") * 3600);
  if (type === "exit_if_event") {
    step.event = value("event");
    if (item.querySelector("[name=same_room]").checked) step.same_room = true;
  }
  if (type === "branch" || type === "exit_unless") {
    step.condition = readCondition(item.querySelector(".jb-cond")) || {};
  }
  if (type === "branch") step.else_goto = number("else_goto") - 1;
  if (type === "send") {
    step.template = value("template");
    readSendExperiment(item, step, value);
  }
  if (type === "tag") step.tag = value("tag");
  if (type === "create_task") {
    if (value("title")) step.title = value("title");
    step.hours = number("hours");
  }
  if (type === "notify_owner") {
    for (const name of ["title", "wechat_template", "sms_template"]) {
      if (value(name)) step[name] = value(name);
    }
  }
  return step;
}

function stepItem(step) {
  const item = el("li");
  item.dataset.type = step.type;
  const labels = Object.fromEntries(stepTypes());
  const head = el("div", null, "jb-row jb-tools");
  head.append(el("strong", labels[step.type] || step.type));
  for (const [text, action] of [
    [t("上移"), "up"],
    [t("下移"), "down"],
    [t("移除"), "remove"],
  ]) {
    const button = el("button", text);
    button.type = "button";
    button.dataset.action = action;
    head.append(button);
  }
  item.append(head, stepFields(step.type, step));
  return item;
}

$("#jb-steps").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const item = button.closest("li");
  if (button.dataset.action === "remove") item.remove();
  if (button.dataset.action === "up" && item.previousElementSibling)
    item.previousElementSibling.before(item);
  if (button.dataset.action === "down" && item.nextElementSibling)
    item.nextElementSibling.after(item);
});

$("#jb-add").addEventListener("click", () => {
  $("#jb-steps").append(stepItem({ type: $("#jb-add-type").value }));
});

// -- load, fill, save --------------------------------------------------------------------------

function fillForm(journey) {
  jb.current = journey;
  const form = $("#journey-builder");
  form.elements.name.value = journey ? journey.name : "";
  form.elements.holdout_pct.value = journey ? journey.holdout_pct : 0;
  $("#jb-trigger").value = journey ? journey.trigger_event : "room.reserve";
  conditionRow($("#jb-condition"), journey && journey.trigger_condition);
  $("#jb-steps").replaceChildren(...(journey ? journey.steps : []).map(stepItem));
  $("#jb-error").textContent = "";
  const toggle = $("#jb-toggle");
  toggle.hidden = !journey;
  $("#jb-delete").hidden = !journey || journey.is_active;
  if (journey) {
    toggle.textContent = journey.is_active ? t("暂停") : t("启用");
    $("#jb-state").textContent = fmt(t("版本 {version} · {state}"), {
      version: journey.version,
      state: journey.is_active ? t("运行中") : t("已暂停"),
    });
  } else {
    $("#jb-state").textContent = t("新旅程保存后处于暂停状态，启用后开始接收成员。");
  }
}

// -- results of the selected journey's experimenting send steps ------------------------------

const GOALS = () => Object.fromEntries(goalChoices());
const pct = (rate) => rate.toLocaleString(lang(), { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
const points = (rate) => (rate * 100).toLocaleString(lang(), { minimumFractionDigits: 1, maximumFractionDigits: 1 });

function upliftText(u, labels) {
  if (!u.enough) {
    return fmt(t("样本不足：{a} {n1} 人、{b} {n0} 人，每组至少 {min} 人才计算提升"), {
      a: labels[0], b: labels[1], n1: u.treatment_n, n0: u.holdout_n, min: u.min_arm,
    }) + " " + fmt(t("（目前转化 {x1} 人 / {x0} 人）"), { x1: u.treatment_converted, x0: u.holdout_converted });
  }
  return fmt(t("转化率：{a} {r1} vs {b} {r0}，提升 {uplift} 个百分点（95% 区间 {low} ~ {high}）"), {
    a: labels[0], b: labels[1], r1: pct(u.treatment_rate), r0: pct(u.holdout_rate),
    uplift: points(u.uplift), low: points(u.ci95[0]), high: points(u.ci95[1]),
  });
}

function table(heads, rows, cls) {
  const wrap = el("div", null, "outbox-wrap");
  const node = el("table", null, `outbox ${cls}`);
  const head = el("tr");
  for (const text of heads) head.append(el("th", text));
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  for (const cells of rows) {
    const tr = el("tr");
    for (const text of cells) tr.append(el("td", String(text)));
    body.append(tr);
  }
  node.append(thead, body);
  wrap.append(node);
  return wrap;
}

// The panel's ECharts instances (static/vendor/echarts.min.js), disposed when it is redrawn.
let resultCharts = [];
const HOLDOUT_COLOUR = "#9e9e9e";
// One colour per copy in both its share and its sent series (ECharts' default palette).
const COPY_COLOURS = ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272"];

function chartBox(cls, label) {
  const box = el("div", null, `bandit-chart ${cls}`);
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", label);
  return box;
}

function chartInit(box, option) {
  const chart = globalThis.echarts.init(box, null, { renderer: "canvas" });
  chart.setOption({ animation: false, ...option });
  resultCharts.push(chart);
  return chart;
}

// Each allocation's shares (stacked areas, left axis) and the messages sent under it per copy
// (stacked bars, right axis), oldest first.
function allocationChart(box, step, when) {
  const history = step.allocations;
  const arms = history[history.length - 1].arms.map((a) => a.variant);
  const names = Object.fromEntries(history.flatMap((a) => a.arms.map((arm) => [arm.variant, arm.name])));
  const armOf = (snap, key) => snap.arms.find((a) => a.variant === key);
  const shareName = (key) => fmt(t("{name} 占比"), { name: names[key] });
  const sentName = (key) => fmt(t("{name} 已发送"), { name: names[key] });
  chartInit(box, {
    tooltip: { trigger: "axis" },
    legend: { top: 0, type: "scroll" },
    grid: { left: 44, right: 44, top: 34, bottom: 28 },
    xAxis: { type: "category", data: history.map((snap, i) => `#${i + 1}`) },
    yAxis: [
      { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      { type: "value", minInterval: 1, splitLine: { show: false } },
    ],
    series: [
      ...arms.map((key, i) => ({
        id: `share:${key}`,
        name: shareName(key),
        color: COPY_COLOURS[i % COPY_COLOURS.length],
        type: "line",
        stack: "share",
        areaStyle: { opacity: 0.35 },
        symbol: "none",
        tooltip: { valueFormatter: (v) => `${v}%` },
        data: history.map((snap) => { const arm = armOf(snap, key); return arm ? Math.round(arm.share * 1000) / 10 : 0; }),
      })),
      ...arms.map((key, i) => ({
        id: `sent:${key}`,
        name: sentName(key),
        color: COPY_COLOURS[i % COPY_COLOURS.length],
        itemStyle: { opacity: 0.85, borderColor: "#fff", borderWidth: 1 },
        type: "bar",
        stack: "sent",
        yAxisIndex: 1,
        barMaxWidth: 18,
        data: history.map((snap) => { const arm = armOf(snap, key); return arm ? arm.sent : 0; }),
      })),
    ],
  });
  box.title = fmt(t("最近一次分配：{at}"), { at: when(history[history.length - 1].at) });
}

// Each copy's conversion (every member it was chosen for) beside the holdout's, counted the
// same way, with the 95 % interval of each drawn as a whisker.
function conversionChart(box, step) {
  const bars = step.copies.map((c) => ({ name: c.name, rate: c.conversion }));
  if (step.holdout_conversion) bars.push({ name: t("对照组"), rate: step.holdout_conversion, holdout: true });
  const percent = (v) => (v === null ? null : Math.round(v * 1000) / 10);
  // The axis reaches the highest whisker: an interval cut off at the top would read shorter.
  const top = Math.max(0, ...bars.map((b) => (b.rate.ci95 ? b.rate.ci95[1] : 0)));
  chartInit(box, {
    tooltip: { trigger: "item" },
    grid: { left: 44, right: 12, top: 16, bottom: 28 },
    xAxis: { type: "category", data: bars.map((b) => b.name) },
    yAxis: { type: "value", min: 0, max: Math.min(100, Math.ceil(top * 20) * 5) || 100, axisLabel: { formatter: "{value}%" } },
    series: [
      {
        id: "conversion",
        name: t("转化率"),
        type: "bar",
        barMaxWidth: 36,
        tooltip: {
          formatter: (p) => {
            const r = bars[p.dataIndex].rate;
            return r.rate === null ? `${p.name}：—` : fmt(t("{name}：{x}/{n} 人转化，{rate}（95% 区间 {low} ~ {high}）"), {
              name: p.name, x: r.converted, n: r.n, rate: pct(r.rate), low: pct(r.ci95[0]), high: pct(r.ci95[1]),
            });
          },
        },
        data: bars.map((b, i) => ({ value: percent(b.rate.rate), itemStyle: { color: b.holdout ? HOLDOUT_COLOUR : COPY_COLOURS[i % COPY_COLOURS.length] } })),
      },
      {
        id: "ci95",
        name: t("95% 区间"),
        type: "custom",
        tooltip: { show: false },
        data: bars.map((b, i) => (b.rate.ci95 ? [i, percent(b.rate.ci95[0]), percent(b.rate.ci95[1])] : [i, null, null])),
        renderItem: (params, api) => {
          if (api.value(1) === null || Number.isNaN(api.value(1))) return null;
          const low = api.coord([api.value(0), api.value(1)]);
          const high = api.coord([api.value(0), api.value(2)]);
          const half = 6;
          const style = { stroke: "#333", lineWidth: 1.5 };
          return {
            type: "group",
            children: [
              { type: "line", shape: { x1: low[0], y1: low[1], x2: high[0], y2: high[1] }, style },
              { type: "line", shape: { x1: low[0] - half, y1: low[1], x2: low[0] + half, y2: low[1] }, style },
              { type: "line", shape: { x1: high[0] - half, y1: high[1], x2: high[0] + half, y2: high[1] }, style },
            ],
          };
        },
        z: 10,
      },
    ],
  });
}

async function loadResults(journey) {
  const box = $("#jb-results");
  box.hidden = true;
  if (!journey) return;
  const steps = await api(`/api/v1/journeys/${journey.id}/results`);
  if (jb.current !== journey) return; // another journey was picked meanwhile
  const list = $("#jb-results-steps");
  for (const chart of resultCharts) chart.dispose();
  resultCharts = [];
  list.replaceChildren();
  // Shown before the charts are drawn: ECharts sizes a canvas from its box on the page.
  box.hidden = steps.length === 0;
  const when = (at) => new Date(at).toLocaleString(lang(), { hour12: false });
  const interval = (r) => (r.rate === null ? "—" : fmt(t("{rate}（{low} ~ {high}）"), { rate: pct(r.rate), low: pct(r.ci95[0]), high: pct(r.ci95[1]) }));
  for (const step of steps) {
    const section = el("section", null, "jb-result");
    section.dataset.step = String(step.step);
    list.append(section); // on the page before a chart is drawn in it (see above)
    const mode = step.variant_mode === "bandit"
      ? fmt(t("自动优化 · 目标：{goal}"), { goal: GOALS()[step.goal] || step.goal })
      : t("固定比例");
    section.append(el("h3", fmt(t("第 {n} 步：发送消息（{mode}）"), { n: step.step + 1, mode })));
    section.append(table(
      [t("文案"), t("已发送"), t("达成目标"), t("当前占比"), t("转化率（95% 区间）")],
      step.copies.map((c) => [`${c.name}（${c.template}）`, c.sent, c.successes, c.share === null ? "—" : pct(c.share), interval(c.conversion)]),
      "jb-copies",
    ));
    // The holdout apart from the copies: drawn before any copy is chosen, never allocated.
    if (step.holdout_conversion) {
      section.append(el("p", fmt(t("对照组 {n} 人：不参与分配，不发送；转化 {x} 人，转化率 {rate}。"), {
        n: step.holdout_conversion.n, x: step.holdout_conversion.converted, rate: interval(step.holdout_conversion),
      }), "jb-holdout-members"));
    }
    if (step.variant_mode === "bandit") {
      if (step.allocations.length) {
        const charts = el("div", null, "jb-charts");
        const shares = chartBox("jb-allocation-chart", t("各文案流量占比与实际发送数的变化"));
        charts.append(el("h4", t("各次分配的流量占比与实际发送数")), shares);
        section.append(charts);
        section.append(table(
          [t("分配时间"), t("各文案 成功/发送 → 占比"), t("此次分配下实际发送")],
          step.allocations.slice().reverse().map((a) => [
            when(a.at),
            a.arms.map((arm) => fmt(t("{name} {successes}/{trials} → {share}"), { name: arm.name, successes: arm.successes, trials: arm.trials, share: pct(arm.share) })).join(t("；")),
            [fmt(t("共 {sent} 条"), { sent: a.sent }), ...a.arms.map((arm) => fmt(t("{name} {sent} 条"), { name: arm.name, sent: arm.sent }))].join(t("；")),
          ]),
          "jb-allocations",
        ));
        if (step.unallocated_sent) {
          section.append(el("p", fmt(t("另有 {n} 条在记录分配之前发送，不计入上表。"), { n: step.unallocated_sent }), "hint"));
        }
        if (globalThis.echarts) allocationChart(shares, step, when);
      } else {
        section.append(el("p", t("还没有分配记录：第一位成员到达此步时开始分配。"), "hint"));
      }
    }
    if (step.copies.some((c) => c.conversion.n) && globalThis.echarts) {
      const rates = chartBox("jb-conversion-chart", t("各文案与对照组的转化率"));
      section.append(el("h4", t("各文案与对照组的转化率（95% 区间）")), rates);
      conversionChart(rates, step);
    }
    if (step.holdout) {
      const p = el("p", upliftText(step.holdout, [t("发送组"), t("对照组")]), "jb-holdout-uplift");
      section.append(p);
    }
    if (step.timing) {
      section.append(el("p", upliftText(step.timing, [t("智能时刻"), t("立即发送")]), "jb-timing-uplift"));
    }
  }
}

window.addEventListener("resize", () => { for (const chart of resultCharts) chart.resize(); });

async function loadBuilder(selectId) {
  const [journeys, templates] = await Promise.all([
    api("/api/v1/journeys"),
    api("/api/v1/templates?page_size=200"),
  ]);
  jb.journeys = journeys;
  jb.templates = (templates.results || []).filter((tpl) => tpl.key);
  const pick = $("#jb-pick");
  pick.replaceChildren(option("", t("＋ 新建旅程")));
  for (const journey of journeys) pick.append(option(journey.id, journey.name));
  const wanted = selectId ? journeys.find((j) => j.id === selectId) : null;
  pick.value = wanted ? String(wanted.id) : "";
  fillForm(wanted || null);
  await loadResults(wanted || null).catch((err) => showError(err));
}

function refreshList() {
  // The journey list (per-step counts) belongs to campaigns.js: re-open its tab to reload it.
  $("button[data-tab=journeys]").click();
}

function showError(err, target = "#jb-error") {
  const fields = (err.body && err.body.fields) || {};
  const lines = [err.message];
  for (const item of document.querySelectorAll("#jb-steps li.bad, .jb-cond.bad")) {
    item.classList.remove("bad");
  }
  for (const [name, messages] of Object.entries(fields)) {
    lines.push(`${name}: ${[].concat(messages).join("；")}`);
    const match = /^steps\[(\d+)\]/.exec(name);
    const item = match && $("#jb-steps").children[Number(match[1])];
    if (item) item.classList.add("bad");
    if (name === "trigger_condition") $("#jb-condition").classList.add("bad");
  }
  $(target).textContent = lines.join("\n");
}

$("#journey-builder").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {
    name: form.elements.name.value,
    trigger_event: $("#jb-trigger").value,
    trigger_condition: readCondition($("#jb-condition")),
    holdout_pct: Number(form.elements.holdout_pct.value || 0),
    steps: [...$("#jb-steps").children].map(readStep),
  };
  try {
    const saved = jb.current
      ? await api(`/api/v1/journeys/${jb.current.id}`, { method: "PATCH", body: JSON.stringify(body) })
      : await api("/api/v1/journeys", { method: "POST", body: JSON.stringify(body) });
    refreshList();
    await loadBuilder(saved.id);
    $("#jb-error").textContent = "";
    $("#jb-state").textContent += ` · ${t("已保存")}`;
  } catch (err) {
    showError(err);
  }
});

$("#jb-pick").addEventListener("change", () => {
  const id = Number($("#jb-pick").value);
  fillForm(jb.journeys.find((j) => j.id === id) || null);
  loadResults(jb.current).catch((err) => showError(err));
});

$("#jb-toggle").addEventListener("click", async () => {
  if (!jb.current) return;
  const action = jb.current.is_active ? "pause" : "activate";
  try {
    const saved = await api(`/api/v1/journeys/${jb.current.id}/${action}`, { method: "POST" });
    refreshList();
    await loadBuilder(saved.id);
  } catch (err) {
    showError(err);
  }
});

$("#jb-delete").addEventListener("click", async () => {
  if (!jb.current) return;
  try {
    await api(`/api/v1/journeys/${jb.current.id}`, { method: "DELETE" });
    refreshList();
    await loadBuilder(null);
  } catch (err) {
    showError(err);
  }
});

// Static choices once; data each time the journeys tab opens (after sign-in).
$("#jb-trigger").replaceChildren(...triggerEvents().map(([v, label]) => option(v, label)));
$("#jb-add-type").replaceChildren(...stepTypes().map(([v, label]) => option(v, label)));
$("button[data-tab=journeys]").addEventListener("click", () => {
  if (!jb.loaded) {
    jb.loaded = true;
    loadBuilder(null).catch((err) => {
      jb.loaded = false;
      showError(err);
    });
  }
});

// -- my notification contact (hot-lead notices by WeChat / SMS) ------------------------------

function showMyContact(contact) {
  $("#my-contact").elements.phone.value = "";
  $("#my-contact").elements.phone.placeholder = contact.phone || t("未填写");
  $("#mc-state").textContent = contact.follows_account
    ? t("已关注公众号：通知走公众号模板消息")
    : contact.phone
      ? fmt(t("通知短信发往 {phone}"), { phone: contact.phone })
      : t("未设置：只在工作台通知");
  showMyWeChat(contact);
}

// 扫码绑定微信: nobody knows their own openid, so the member scans a one-time QR code of the
// official account; WeChat tells our callback who scanned it. The page polls the binding.
const binding = { id: null, timer: null, until: 0 };

function showMyWeChat(contact) {
  const bound = contact.has_openid;
  $("#mc-wechat-state").textContent = bound
    ? fmt(t("已绑定微信 {account}"), { account: contact.openid_masked || "****" }) +
      (contact.follows_account ? "" : t("（未关注公众号：通知仍走短信）"))
    : t("未绑定微信：扫码绑定后，通知走公众号模板消息");
  $("#mc-bind").textContent = bound ? t("重新扫码绑定") : t("扫码绑定微信");
  $("#mc-unbind").hidden = !bound;
}

function stopBinding(hint) {
  clearTimeout(binding.timer);
  binding.id = null;
  binding.timer = null;
  $("#mc-qr").hidden = !hint;
  $("#mc-qr-img").hidden = true;
  $("#mc-qr-hint").textContent = hint || "";
}

async function pollBinding(id) {
  if (binding.id !== id) return;
  if (Date.now() > binding.until) {
    stopBinding(t("二维码已过期，请重新获取"));
    return;
  }
  try {
    const state = await api(`/api/v1/staff-contact/wechat-bind/${id}`);
    if (binding.id !== id) return;
    if (state.status === "bound") {
      stopBinding("");
      showMyContact(state.contact);
      return;
    }
    if (state.status === "expired") {
      stopBinding(t("二维码已过期，请重新获取"));
      return;
    }
  } catch (err) {
    if (binding.id !== id) return;
  }
  binding.timer = setTimeout(() => pollBinding(id), 2000);
}

$("#mc-bind").addEventListener("click", async () => {
  $("#mc-error").textContent = "";
  stopBinding("");
  try {
    const started = await api("/api/v1/staff-contact/wechat-bind", { method: "POST", body: JSON.stringify({}) });
    binding.id = started.id;
    binding.until = Date.now() + (started.expires_in + 5) * 1000;
    $("#mc-qr-img").src = started.image;
    $("#mc-qr-img").hidden = false;
    $("#mc-qr").hidden = false;
    $("#mc-qr-hint").textContent = fmt(t("请用微信扫码（{minutes} 分钟内有效，仅限本人使用）"), { minutes: Math.round(started.expires_in / 60) });
    binding.timer = setTimeout(() => pollBinding(started.id), 2000);
  } catch (err) {
    showError(err, "#mc-error");
  }
});

$("#mc-unbind").addEventListener("click", async () => {
  $("#mc-error").textContent = "";
  stopBinding("");
  try {
    showMyContact(await api("/api/v1/staff-contact/wechat-bind", { method: "DELETE" }));
  } catch (err) {
    showError(err, "#mc-error");
  }
});

$("#my-contact").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#mc-error").textContent = "";
  try {
    const phone = event.target.elements.phone.value.trim();
    showMyContact(await api("/api/v1/staff-contact", { method: "PUT", body: JSON.stringify({ phone }) }));
  } catch (err) {
    showError(err, "#mc-error");
  }
});

$("button[data-tab=journeys]").addEventListener("click", () => {
  api("/api/v1/staff-contact").then(showMyContact).catch(() => {});
});
