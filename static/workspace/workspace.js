// Sales workspace (销售工作台): lead pool, lead detail, segment builder, score distribution,
// tasks, real-time hot-lead notifications. User text is only ever set with textContent.

import { t, tn, fmt, lang } from "../shared/i18n.js";

const $ = (sel, root = document) => root.querySelector(sel);
const TOKEN_KEY = "qm.staff.token";
const state = { token: sessionStorage.getItem(TOKEN_KEY), page: 1, filters: {}, me: null, current: null };

const LABELS = {
  gender: { female: t("女"), male: t("男"), unknown: t("未知") },
  status: { new: t("新线索"), contacted: t("已联系"), qualified: t("已确认"), won: t("已成交"), lost: t("已流失") },
  income_level: { low: t("低"), mid: t("中"), high: t("高"), "": t("未知") },
  lifecycle: { prospect: t("潜在客户"), new_customer: t("新客户"), active: t("活跃客户"), at_risk: t("流失风险"), lapsed: t("已流失客户") },
  purpose: { sms_marketing: t("短信营销"), wechat_marketing: t("微信营销"), profiling: t("画像与评分"), wechat_service: t("微信服务通知") },
  event: {
    "room.reserve": t("预约直播"), "room.join": t("进入直播间"), "room.leave": t("离开直播间"), chat: t("发言"), like: t("点赞"),
    follow: t("关注主播"), "product.click": t("点击商品"), "coupon.claim": t("领取优惠券"), "coupon.redeem": t("核销优惠券"),
    order: t("下单"), share: t("分享"), "invite.accepted": t("邀请成功"), "replay.watch": t("观看回放"), "oa.subscribe": t("关注公众号"),
    "oa.unsubscribe": t("取关公众号"), "message.delivered": t("消息送达"), "message.clicked": t("点击消息"), "form.submit": t("提交表单"),
    note: t("备注"), score: t("评分变化"), "consent.grant": t("同意"), "consent.withdraw": t("撤回同意"),
    owner: t("负责人变更"), profile: t("资料修改"), status: t("状态变更"),
  },
  profile_field: { gender: t("性别"), birth_year: t("年龄"), province: t("省份"), city: t("城市"), attributes: t("自定义属性") },
  owner_reason: {
    manual: t("手动分配"), round_robin: t("轮流分配"), hot_lead: t("热线索分配"),
    sla_pool: t("超时退回公海"), sla_next_member: t("超时转给下一位"),
  },
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `Token ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`/api/v1/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { logout(); throw new Error(t("登录已过期")); }
  if (raw) return res;
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) { const err = new Error(data?.message || `HTTP ${res.status}`); err.data = data; throw err; }
  return data;
}

// A hot lead's mark: an SVG flame (static/workspace/workspace.css), not an emoji, which
// needs an emoji font the machine may not have.
const hotMark = () => el("span", { class: "hot-mark", "aria-hidden": "true" });

function toast(text, { hot = false } = {}) {
  const t = $("#toast");
  t.replaceChildren(...(hot ? [hotMark()] : []), text);
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(lang(), { hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

// --- login --------------------------------------------------------------------------------

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  $("#app").hidden = true;
  $("#login").hidden = false;
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const res = await fetch("/api/v1/auth/token", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
  });
  const data = await res.json();
  if (!res.ok) { $("#login-error").textContent = data.message || t("登录失败"); return; }
  state.token = data.token;
  sessionStorage.setItem(TOKEN_KEY, data.token);
  start();
});
$("#logout").addEventListener("click", logout);

// --- tabs ---------------------------------------------------------------------------------

for (const button of document.querySelectorAll(".tabs button")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}

function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("on", b.dataset.tab === name);
  for (const p of document.querySelectorAll("[data-panel]")) p.hidden = p.dataset.panel !== name;
  if (name === "segments") loadSegments();
  if (name === "stats") loadStats();
  if (name === "tasks") loadTasks();
}

// --- lead pool ----------------------------------------------------------------------------

function query() {
  const params = new URLSearchParams({ ordering: "-score", page: String(state.page), page_size: "30" });
  for (const [k, v] of Object.entries(state.filters)) {
    if (!v) continue;
    if (k === "q" && /^[+\d][\d\s-]{6,}$/.test(v)) params.set("identity", v.replace(/[\s-]/g, ""));
    else params.set(k, v);
  }
  return params;
}

async function loadLeads() {
  let data;
  try { data = await api(`leads?${query()}`); } catch (err) { toast(err.message); return; }
  const body = $("#lead-rows");
  body.replaceChildren();
  for (const lead of data.results) {
    const row = el("tr", { onclick: () => openLead(lead.id) },
      el("td", {}, el("strong", { text: lead.nickname || `#${lead.id}` }), el("br"),
        el("small", { text: [LABELS.gender[lead.gender], lead.age ? fmt(t("{n}岁"), { n: lead.age }) : "", lead.phone].filter(Boolean).join(" · ") })),
      el("td", { class: "num", text: lead.score ?? "—" }),
      el("td", {}, el("span", { class: `grade g-${lead.grade || "none"}`, text: lead.grade || "—" })),
      el("td", { class: "wide", text: lead.city }),
      el("td", { class: "wide", text: lead.owner_name || t("公海") }),
      el("td", { text: LABELS.status[lead.status] || lead.status }),
    );
    if (state.current === lead.id) row.classList.add("sel");
    body.append(row);
  }
  const pages = Math.max(1, Math.ceil(data.count / 30));
  $("#page-info").textContent = fmt(t("{page} / {pages} · 共 {n} 条"), { page: state.page, pages, n: data.count });
  $("#prev").disabled = state.page <= 1;
  $("#next").disabled = state.page >= pages;
}

$("#filters").addEventListener("submit", (e) => {
  e.preventDefault();
  state.filters = Object.fromEntries(new FormData(e.target));
  state.page = 1;
  loadLeads();
});
$("#prev").addEventListener("click", () => { state.page -= 1; loadLeads(); });
$("#next").addEventListener("click", () => { state.page += 1; loadLeads(); });
for (const link of [$("#export"), $("#export-xlsx")]) {
  link.addEventListener("click", (e) => { e.preventDefault(); startExport(link.dataset.format); });
}

// --- lead detail --------------------------------------------------------------------------

async function openLead(id) {
  state.current = id;
  let lead;
  try { lead = await api(`leads/${id}`); } catch (err) { toast(err.message); return; }
  const d = $("#detail");
  d.hidden = false;
  d.replaceChildren();
  d.append(
    el("button", { class: "close", text: "×", onclick: () => { d.hidden = true; state.current = null; } }),
    el("h2", { text: lead.nickname || `#${lead.id}` },
      el("span", { class: `grade g-${lead.grade || "none"}`, text: lead.grade || t("未评分") })),
    el("p", { class: "facts", text: [
      LABELS.gender[lead.gender], lead.age ? fmt(t("{n}岁"), { n: lead.age }) : "", [lead.province, lead.city].filter(Boolean).join(" "),
      fmt(t("收入{level}"), { level: LABELS.income_level[lead.income_level] ?? "" }), lead.phone ? fmt(t("手机 {phone}"), { phone: lead.phone }) : "",
      LABELS.lifecycle[lead.lifecycle], lead.rfm ? `RFM ${lead.rfm}` : "",
    ].filter(Boolean).join(" · ") }),
  );
  if (lead.tags.length) d.append(el("p", {}, ...lead.tags.map((t) => el("span", { class: "tag", text: t }))));
  const attrs = Object.entries(lead.attributes || {});
  if (attrs.length) d.append(el("p", { class: "lead-attrs" }, ...attrs.map(([k, v]) => el("span", { class: "tag", text: fmt(t("{name}：{value}"), { name: k, value: v }) }))));
  // The API decides who may edit a profile (admins any lead, sales their own and the pool's).
  if (lead.profile_editable) {
    const box = el("div", { id: "profile-box" });
    box.append(el("button", { type: "button", class: "link", id: "profile-edit", text: t("编辑资料"), onclick: () => box.replaceChildren(profileForm(id, lead)) }));
    d.append(box);
  }

  // Score and its breakdown.
  const sum = lead.score_breakdown.reduce((s, r) => s + r.points, 0);
  const breakdown = el("table", { class: "breakdown" },
    ...lead.score_breakdown.map((r) => el("tr", {}, el("td", { text: r.name }), el("td", { class: "num", text: (r.points > 0 ? "+" : "") + r.points }))),
    el("tr", { class: "total" }, el("td", { text: t("合计") }), el("td", { class: "num", text: lead.score ?? "—" })));
  d.append(el("h3", { text: fmt(t("评分 {score}"), { score: lead.score ?? "—" }) }), lead.score === null
    ? el("p", { class: "hint", text: t("此人已拒绝画像与评分，不计分、不做个性化营销。") })
    : breakdown);
  if (lead.score !== null && sum !== lead.score) d.append(el("p", { class: "err", text: t("明细与评分不一致") }));

  // Workflow: owner, status, note, task.
  const statusSel = el("select", {}, ...Object.entries(LABELS.status).map(([v, t]) => {
    const o = el("option", { value: v, text: t }); if (v === lead.status) o.selected = true; return o; }));
  statusSel.addEventListener("change", () => patchLead(id, { status: statusSel.value }));
  const claim = el("button", { text: lead.owner === state.me?.user_id ? t("退回公海") : t("分配给我"),
    onclick: () => patchLead(id, { owner: lead.owner === state.me?.user_id ? null : state.me?.user_id }) });
  const rr = el("button", { text: t("轮询分配"), onclick: async () => {
    await api("leads/assign", { method: "POST", body: { leads: [id], mode: "round_robin" } }); openLead(id); loadLeads(); } });
  d.append(el("h3", { text: t("跟进") }), el("p", { class: "row" },
    el("span", { text: fmt(t("负责人：{owner}"), { owner: lead.owner_name || t("公海") }) }), claim, rr, statusSel));

  const noteForm = el("form", { class: "inline" }, el("input", { name: "body", required: "", placeholder: t("添加备注") }), el("button", { text: t("保存") }));
  noteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    await api(`leads/${id}/notes`, { method: "POST", body: { body: noteForm.body.value } });
    openLead(id);
  });
  const due = new Date(Date.now() + 86400000);
  const taskForm = el("form", { class: "inline" },
    el("input", { name: "title", required: "", placeholder: t("跟进任务") }),
    el("input", { name: "due", type: "datetime-local", value: new Date(due - due.getTimezoneOffset() * 60000).toISOString().slice(0, 16) }),
    el("button", { text: t("创建") }));
  taskForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    await api(`leads/${id}/tasks`, { method: "POST", body: { title: taskForm.title.value, due_at: new Date(taskForm.due.value).toISOString() } });
    openLead(id);
  });
  d.append(noteForm, taskForm);
  if (lead.tasks.length) {
    d.append(el("ul", { class: "task-list" }, ...lead.tasks.map(taskItem)));
  }

  // Consent state, each purpose recordable with where the decision came from (the ledger
  // keeps source and evidence), and the person's own data as a JSON file (PIPL art. 45).
  d.append(el("h3", { text: t("授权状态") }), el("ul", { class: "consents" }, ...Object.entries(lead.consents).map(([p, c]) =>
    consentItem(id, p, c))));
  // Only admins may reveal everything held about a person (the API says 403 to sales).
  if (isAdmin()) d.append(el("p", {}, el("button", { type: "button", class: "link", id: "personal-export", text: t("导出个人信息（JSON）"), onclick: () => personalExport(id) })));

  // Timeline.
  d.append(el("h3", { text: t("时间线") }), el("ol", { class: "timeline" }, ...lead.timeline.map((item) => {
    let text = LABELS.event[item.type] || item.type;
    if (item.kind === "note") text += fmt(t("：{body}（{author}）"), { body: item.body, author: item.author });
    else if (item.kind === "score") text += fmt(t("：{old} → {score}（{grade}）"), { old: item.old_score ?? "—", score: item.score ?? "—", grade: item.grade || "—" }) + (item.reason === "profile" ? t(" · 因资料修改") : "");
    else if (item.kind === "profile") text += fmt(t("：{fields}（{actor}）"), { fields: item.fields.map((f) => LABELS.profile_field[f] || f).join(t("、")), actor: item.actor });
    else if (item.kind === "owner") text += fmt(t("：{from} → {to}（{reason}）"), { from: item.from || t("公海"), to: item.to || t("公海"), reason: LABELS.owner_reason[item.reason] || item.reason });
    else if (item.kind === "status") text += fmt(t("：{from} → {to}（{actor}）"), { from: LABELS.status[item.from] || item.from, to: LABELS.status[item.to] || item.to, actor: item.actor || t("系统") });
    else if (item.kind === "consent") text += fmt(t("：{detail}"), { detail: `${LABELS.purpose[item.purpose] || item.purpose} · ${item.source}` });
    else if (item.props?.text) text += fmt(t("：{detail}"), { detail: item.props.text });
    else if (item.props?.name) text += fmt(t("：{detail}"), { detail: item.props.name });
    else if (item.value != null) text += fmt(t("：{detail}"), { detail: item.value });
    return el("li", {}, el("time", { text: fmtTime(item.at) }), el("span", { text: ` ${text}` }));
  })));
  // The lead's outbox (read-only): what was planned or sent to them, with the dedup key.
  const outbox = el("ul", { id: "lead-outbox", class: "timeline" });
  d.append(el("h3", { text: t("发送记录") }), outbox);
  api(`leads/${id}/deliveries?page_size=20`).then((data) => {
    if (state.current !== id) return;
    outbox.replaceChildren(...data.results.map((row) => el("li", { "data-delivery": String(row.id) },
      el("time", { text: fmtTime(row.sent_at || row.created_at) }),
      el("span", { text: ` ${row.campaign_name || t("旅程/服务消息")} · ${DELIVERY[row.status] || row.status}${row.provider_message_id ? ` · ${row.provider_message_id}` : ""}` }),
      el("div", { class: "ctx", text: fmt(t("幂等键：{key}"), { key: row.dedup_key }) }))));
    if (!data.results.length) outbox.append(el("li", { class: "hint", text: t("暂无发送记录") }));
  }).catch(() => {});
  for (const row of document.querySelectorAll("#lead-rows tr")) row.classList.remove("sel");
  d.scrollIntoView({ block: "nearest" });
}

function consentItem(leadId, purpose, c) {
  const li = el("li", { "data-purpose": purpose }, el("span", { class: c.granted ? "ok" : "no", text: c.granted ? "✓" : "✗" }),
    el("span", { text: ` ${LABELS.purpose[purpose] || purpose}` }), el("small", { text: c.source ? ` · ${c.source}` : "" }));
  const action = c.granted ? "withdraw" : "grant";
  li.append(" ", el("button", { type: "button", class: "link", "data-action": action,
    text: c.granted ? t("记录撤回") : t("记录同意"), onclick: () => {
      if (li.querySelector("form")) return;
      const form = el("form", { class: "inline consent-form" },
        el("input", { name: "source", required: "", maxlength: "64", placeholder: t("来源（如：电话确认、门店登记表）") }),
        el("input", { name: "note", maxlength: "200", placeholder: t("凭证说明（可选）") }),
        el("button", { type: "submit", text: t("保存") }),
        el("div", { class: "err field-err" }));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const data = new FormData(form);
        const body = { purpose, action, source: String(data.get("source")).trim() };
        if (String(data.get("note")).trim()) body.evidence = { note: String(data.get("note")).trim() };
        try {
          await api(`leads/${leadId}/consents`, { method: "POST", body });
        } catch (err) {
          const fields = err.data?.fields || {};
          form.querySelector(".err").textContent = [].concat(fields.source || err.message).join(" ");
          return;
        }
        toast(t("授权记录已保存"));
        openLead(leadId);
      });
      li.append(form);
      form.querySelector("input").focus();
    } }));
  return li;
}

async function personalExport(leadId) {
  let body;
  try { body = await api(`leads/${leadId}/personal-data`); } catch (err) { toast(err.message || t("导出失败")); return; }
  const url = URL.createObjectURL(new Blob([JSON.stringify(body, null, 2)], { type: "application/json" }));
  const a = el("a", { href: url, download: `personal-data-${leadId}.json` });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const DELIVERY = {
  pending: t("待发送"), sending: t("发送中"), sent: t("已发送"), delivered: t("已送达"),
  failed: t("失败"), unknown: t("状态未知"), suppressed: t("已拦截"), holdout: t("对照组"),
};

// taskItem's parameter is named t: its texts are looked up here, outside its scope.
const TASK_TEXT = {
  due: t("截止 {due}"), done: t(" · 已完成"), lapsed: t(" · 已超时"), complete: t("完成"),
  clicked: t("点击商品：{items}"), claimed: t("领券：{items}"), asked: t("提问：{items}"), listSep: t("、"),
};

function taskItem(t) {
  const li = el("li", { class: t.done_at ? "done" : t.lapsed_at ? "lapsed" : "" },
    el("span", {}, t.kind === "hot_lead" ? hotMark() : null, t.title),
    el("small", { text: ` ${fmt(TASK_TEXT.due, { due: fmtTime(t.due_at) })}${t.done_at ? TASK_TEXT.done : t.lapsed_at ? TASK_TEXT.lapsed : ""}` }));
  if (!t.done_at && !t.lapsed_at) {
    li.append(el("button", { class: "link", text: TASK_TEXT.complete, onclick: async () => {
      await api(`tasks/${t.id}/complete`, { method: "POST" }); li.classList.add("done"); } }));
  }
  if (t.context?.products_clicked?.length) li.append(el("div", { class: "ctx", text: fmt(TASK_TEXT.clicked, { items: t.context.products_clicked.join(TASK_TEXT.listSep) }) }));
  if (t.context?.coupons_claimed?.length) li.append(el("div", { class: "ctx", text: fmt(TASK_TEXT.claimed, { items: t.context.coupons_claimed.join(TASK_TEXT.listSep) }) }));
  if (t.context?.questions?.length) li.append(el("div", { class: "ctx", text: fmt(TASK_TEXT.asked, { items: t.context.questions.join(" / ") }) }));
  li.addEventListener("dblclick", () => { showTab("leads"); openLead(t.contact); });
  return li;
}

// Mainland provinces, municipalities and regions as stored on a contact (the picker's list;
// a value outside it, e.g. from an import, is kept as its own option).
const PROVINCES = ["北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽",
  "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
  "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门"];
const PROFILE_LABELS = { gender: t("性别"), age: t("年龄"), province: t("省份"), city: t("城市"), attributes: t("自定义属性") };

// The lead's profile (gender, age, province, city, custom attributes) edited in place:
// PATCH leads/{id} with only what changed (a removed custom attribute is sent as null);
// a 400's field errors go under their field. The detail then reloads with the timeline's
// profile and re-score items.
function profileForm(id, lead) {
  const errBox = (name) => el("div", { class: "err field-err", "data-for": name });
  const option = (value, text, selected) => { const o = el("option", { value, text }); if (selected) o.selected = true; return o; };
  const gender = el("select", { name: "gender" }, ...Object.entries(LABELS.gender).map(([v, label]) => option(v, label, v === lead.gender)));
  const provinces = PROVINCES.includes(lead.province) || !lead.province ? PROVINCES : [lead.province, ...PROVINCES];
  const province = el("select", { name: "province" }, option("", t("未填写"), !lead.province), ...provinces.map((v) => option(v, v, v === lead.province)));
  const age = el("input", { name: "age", type: "number", min: "0", max: "120", step: "1", value: lead.age == null ? "" : String(lead.age) });
  const city = el("input", { name: "city", maxlength: "32", value: lead.city || "" });
  const label = (name, input) => el("label", { class: "pf-field" }, el("span", { text: PROFILE_LABELS[name] }), input, errBox(name));
  const rows = el("div", { class: "pf-attrs" });
  const attrRow = (key = "", value = "") => {
    const row = el("div", { class: "row pf-attr" },
      el("input", { name: "attr-key", maxlength: "32", placeholder: t("属性名"), value: key, "aria-label": t("属性名") }),
      el("input", { name: "attr-value", maxlength: "100", placeholder: t("属性值"), value: value, "aria-label": t("属性值") }));
    row.append(el("button", { type: "button", class: "link", "data-action": "remove-attr", text: t("删除"), onclick: () => row.remove() }));
    return row;
  };
  for (const [k, v] of Object.entries(lead.attributes || {})) rows.append(attrRow(k, v));
  const form = el("form", { class: "profile-edit" },
    label("gender", gender), label("age", age), label("province", province), label("city", city),
    el("fieldset", {}, el("legend", { text: PROFILE_LABELS.attributes }), rows,
      el("button", { type: "button", class: "link", "data-action": "add-attr", text: t("+ 自定义属性"), onclick: () => { const r = attrRow(); rows.append(r); r.querySelector("input").focus(); } }),
      errBox("attributes")),
    el("p", { class: "row" }, el("button", { type: "submit", text: t("保存资料") }),
      el("button", { type: "button", class: "link", text: t("取消"), onclick: () => openLead(id) })),
    errBox("_"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const box of form.querySelectorAll(".field-err")) box.textContent = "";
    const body = {};
    if (gender.value !== lead.gender) body.gender = gender.value;
    const newAge = age.value.trim() === "" ? null : Number(age.value);
    if (newAge !== (lead.age ?? null)) body.age = newAge;
    if (province.value !== (lead.province || "")) body.province = province.value;
    if (city.value.trim() !== (lead.city || "")) body.city = city.value.trim();
    const before = lead.attributes || {};
    const after = {};
    for (const row of rows.querySelectorAll(".pf-attr")) {
      const key = row.querySelector("[name=attr-key]").value.trim();
      if (key) after[key] = row.querySelector("[name=attr-value]").value.trim();
    }
    const attributes = {};
    for (const key of Object.keys(before)) if (!(key in after)) attributes[key] = null;
    for (const [key, value] of Object.entries(after)) if (before[key] !== value) attributes[key] = value;
    if (Object.keys(attributes).length) body.attributes = attributes;
    if (!Object.keys(body).length) { form.querySelector('.field-err[data-for="_"]').textContent = t("没有修改"); return; }
    try {
      await api(`leads/${id}`, { method: "PATCH", body });
    } catch (err) {
      let shown = false;
      for (const [name, msgs] of Object.entries(err.data?.fields || {})) {
        const box = form.querySelector(`.field-err[data-for="${name}"]`) || form.querySelector('.field-err[data-for="_"]');
        // A custom attribute's own error comes keyed by its name: {"attributes": {"肤质": [...]}}.
        const text = typeof msgs === "object" && !Array.isArray(msgs)
          ? Object.entries(msgs).map(([k, m]) => `${k}：${[].concat(m).join(" ")}`).join(" ")
          : [].concat(msgs).join(" ");
        box.textContent = text; shown = true;
      }
      if (!shown) form.querySelector('.field-err[data-for="_"]').textContent = err.message;
      return;
    }
    toast(t("资料已保存"));
    await openLead(id);
    loadLeads();
  });
  return form;
}

async function patchLead(id, body) {
  try { await api(`leads/${id}`, { method: "PATCH", body }); } catch (err) { toast(err.message); return; }
  openLead(id);
  loadLeads();
}

// --- segment builder ----------------------------------------------------------------------

const ATTR_FIELDS = {
  gender: { label: t("性别"), ops: ["eq", "ne"], values: LABELS.gender },
  age: { label: t("年龄"), ops: ["between", "gte", "lte", "eq"], number: true },
  city: { label: t("城市"), ops: ["in", "eq", "ne"] },
  province: { label: t("省份"), ops: ["in", "eq"] },
  income_level: { label: t("收入"), ops: ["eq", "in"], values: { low: t("低"), mid: t("中"), high: t("高") } },
  tags: { label: t("标签"), ops: ["contains"] },
  score: { label: t("评分"), ops: ["gte", "lte", "between"], number: true },
  grade: { label: t("等级"), ops: ["eq", "in"] },
  status: { label: t("状态"), ops: ["eq", "in"], values: LABELS.status },
  lifecycle: { label: t("生命周期"), ops: ["eq", "in"], values: LABELS.lifecycle },
  "consent.sms_marketing": { label: t("短信营销授权"), ops: ["eq"], bool: true },
  "consent.wechat_marketing": { label: t("微信营销授权"), ops: ["eq"], bool: true },
};
const OPS = { eq: t("等于"), ne: t("不等于"), in: t("属于"), between: t("介于"), gte: "≥", lte: "≤", gt: ">", lt: "<", contains: t("包含") };
const EVENTS = ["room.leave", "room.join", "room.reserve", "coupon.claim", "coupon.redeem", "chat", "product.click", "order", "share", "follow"];

// Allowed values per field, with labels in the page's language: GET segments/fields.
const segFields = { choices: {}, loaded: null };
function loadSegFields() {
  segFields.loaded ||= api("segments/fields").then((data) => {
    for (const f of data.fields) if (f.choices.length) segFields.choices[f.field] = f.choices;
  }).catch(() => { segFields.loaded = null; });
  return segFields.loaded;
}

function parseValue(field, op, raw) {
  const spec = ATTR_FIELDS[field] || { number: true };
  const parts = raw.split(/[,，\s]+/).filter(Boolean);
  const conv = (x) => (spec.number ? Number(x) : x);
  if (op === "between") return parts.slice(0, 2).map(conv);
  if (op === "in") return parts.map(conv);
  return parts.length ? conv(parts[0]) : "";
}

// The value widget for a field and operator: a picker when the API lists the values
// (a multi-picker for 属于), a number box for numbers, otherwise free text.
function valueInput(field, op) {
  const choices = segFields.choices[field];
  const spec = ATTR_FIELDS[field] || {};
  if (choices) {
    const multiple = op === "in";
    const attrs = { name: "value", "data-picker": "1" };
    if (multiple) { attrs.multiple = ""; attrs.size = String(Math.min(choices.length, 4)); }
    const options = choices.map((c, i) => el("option", { value: String(i), text: c.label }));
    if (!multiple) options.unshift(el("option", { value: "", text: t("请选择") }));
    return el("select", attrs, ...options);
  }
  if (spec.number && op !== "between" && op !== "in") return el("input", { name: "value", type: "number", inputmode: "numeric" });
  return el("input", { name: "value", placeholder: op === "between" ? t("两个值，用逗号分隔") : t("值（多个用逗号分隔）") });
}

// The row's value, or undefined while the row is incomplete (not sent to the preview).
function rowValue(field, op, input) {
  if (input.dataset.picker) {
    const choices = segFields.choices[field];
    const picked = [...input.selectedOptions].filter((o) => o.value !== "").map((o) => choices[Number(o.value)].value);
    if (!picked.length) return undefined;
    return op === "in" ? picked : picked[0];
  }
  const value = parseValue(field, op, input.value);
  if (value === "" || (Array.isArray(value) && !value.length)) return undefined;
  return value;
}

// One condition row (segment builder and scoring-rule editor): ``onChange`` runs on every
// edit; ``exclude`` drops attribute fields (a rule may not depend on score or grade).
function segRow(kind, { onChange = segChanged, exclude = [] } = {}) {
  const segChanged = onChange;
  const row = el("div", { class: "seg-row", "data-kind": kind });
  const del = el("button", { type: "button", class: "link", text: t("删除"), onclick: () => { row.remove(); segChanged(); } });
  if (kind === "attr") {
    const field = el("select", { name: "field" }, ...Object.entries(ATTR_FIELDS).filter(([k]) => !exclude.includes(k)).map(([k, v]) => el("option", { value: k, text: v.label })));
    const op = el("select", { name: "op" });
    let value = valueInput(field.value, "eq");
    const fillValue = () => { const next = valueInput(field.value, op.value); value.replaceWith(next); value = next; };
    const fillOps = () => {
      op.replaceChildren(...ATTR_FIELDS[field.value].ops.map((o) => el("option", { value: o, text: OPS[o] })));
      fillValue();
    };
    field.addEventListener("change", () => { fillOps(); segChanged(); });
    op.addEventListener("change", () => { fillValue(); segChanged(); });
    fillOps();
    row.append(field, op, value, del, el("div", { class: "field-err err" }));
  } else {
    row.append(
      el("label", { text: t("近") }, el("input", { name: "window", type: "number", min: "1", value: "30", class: "short" })),
      el("span", { text: t("天") }),
      el("select", { name: "event" }, ...EVENTS.map((e) => el("option", { value: e, text: LABELS.event[e] }))),
      el("select", { name: "agg" }, el("option", { value: "count", text: t("次数") }), el("option", { value: "sum", text: t("合计（时长秒/金额）") })),
      el("select", { name: "op" }, ...["gte", "lte", "eq", "lt", "gt"].map((o) => el("option", { value: o, text: OPS[o] }))),
      el("input", { name: "value", type: "number", value: "1", class: "short" }),
      el("input", { name: "room", type: "number", placeholder: t("直播间ID(可选)"), class: "short" }),
      el("label", {}, el("input", { name: "negate", type: "checkbox" }), el("span", { text: t("取反") })),
      del,
      el("div", { class: "field-err err" }),
    );
  }
  row.addEventListener("input", segChanged);
  row.addEventListener("change", segChanged);
  return row;
}

// The condition of the complete rows; each row's message goes under the row itself.
function segCondition({ mark = false } = {}) {
  return conditionOf($("#seg-rows"), $("#seg-join").value, { mark });
}

function conditionOf(root, join, { mark = false } = {}) {
  const items = [];
  const rows = [];
  for (const row of root.querySelectorAll(".seg-row")) {
    const get = (n) => row.querySelector(`[name=${n}]`);
    const err = row.querySelector(".field-err");
    if (err) err.textContent = "";
    if (row.dataset.kind === "attr") {
      const value = rowValue(get("field").value, get("op").value, get("value"));
      if (value === undefined) {
        if (err && mark) err.textContent = get("value").dataset.picker ? t("请选择值") : t("请填写值");
        continue;
      }
      items.push({ field: get("field").value, op: get("op").value, value });
    } else {
      const leaf = { event: get("event").value, agg: get("agg").value, op: get("op").value, value: Number(get("value").value) };
      if (get("window").value) leaf.window_days = Number(get("window").value);
      if (get("room").value) leaf.room = Number(get("room").value);
      if (row.dataset.prop && leaf.agg === "sum") leaf.prop = row.dataset.prop;
      items.push(get("negate").checked ? { not: leaf } : leaf);
    }
    rows.push(row);
  }
  return { condition: { [join]: items }, rows };
}

// The rows of a condition the pickers can show: one leaf, or all/any of leaves (a behaviour
// leaf possibly negated). Anything deeper is null: it stays as it is (shown as JSON).
function conditionRows(cond) {
  const leaf = (c) => c && typeof c === "object" && (("field" in c && !("event" in c)) || "event" in c || (c.not && "event" in c.not));
  if (!cond || typeof cond !== "object") return null;
  if (leaf(cond)) return { join: "all", items: [cond] };
  const join = "all" in cond ? "all" : "any" in cond ? "any" : null;
  if (!join || Object.keys(cond).length !== 1 || !Array.isArray(cond[join]) || !cond[join].every(leaf)) return null;
  return { join, items: cond[join] };
}

// Set a fresh row's widgets to a condition leaf (the row's own change handlers rebuild the
// operator list and value widget as a user's picks would).
function fillRow(row, item) {
  const set = (name, value) => {
    const input = row.querySelector(`[name=${name}]`);
    if (input.type === "checkbox") input.checked = Boolean(value); else input.value = value;
    input.dispatchEvent(new Event("change"));
  };
  if (row.dataset.kind === "attr") {
    set("field", item.field);
    set("op", item.op);
    const input = row.querySelector("[name=value]");
    if (input.dataset.picker) {
      const wanted = [].concat(item.value).map(String);
      const choices = segFields.choices[item.field] || [];
      for (const o of input.options) if (o.value !== "") o.selected = wanted.includes(String(choices[Number(o.value)].value));
    } else {
      input.value = Array.isArray(item.value) ? item.value.join(",") : String(item.value ?? "");
    }
    return;
  }
  const leaf = item.not || item;
  set("window", leaf.window_days ?? "");
  set("event", leaf.event);
  set("agg", leaf.agg);
  set("op", leaf.op);
  set("value", leaf.value);
  set("room", leaf.room ?? "");
  set("negate", Boolean(item.not));
  if (leaf.prop) row.dataset.prop = leaf.prop;
}

// A 400 names the part of the condition (e.g. "all[2].value: …"): show it under that row.
function showSegError(err, rows) {
  const text = [].concat(err?.data?.fields?.condition || err?.message || "").join(" ");
  const m = /^(?:all|any)\[(\d+)\](?:\.(\w+))?/.exec(text);
  const row = m ? rows[Number(m[1])] : null;
  if (row) {
    const what = { value: t("值无效"), op: t("条件不适用于该字段"), field: t("未知字段") }[m[2]] || t("条件无效");
    row.querySelector(".field-err").textContent = what;
    $("#seg-error").textContent = "";
  } else {
    $("#seg-error").textContent = t("条件无效");
  }
}

let segTimer;
function segChanged() {
  clearTimeout(segTimer);
  segTimer = setTimeout(async () => {
    const { condition, rows } = segCondition({ mark: true });
    const items = Object.values(condition)[0];
    $("#seg-json").textContent = JSON.stringify(condition, null, 1);
    $("#seg-error").textContent = "";
    if (!items.length) { $("#seg-count").textContent = "–"; return; }
    try {
      const data = await api("segments/preview", { method: "POST", body: { condition } });
      $("#seg-count").textContent = data.count;
    } catch (err) {
      $("#seg-count").textContent = "–";
      showSegError(err, rows);
    }
  }, 300);
}

async function segAdd(kind) {
  await loadSegFields();
  $("#seg-rows").append(segRow(kind));
  segChanged();
}
$("#seg-add").addEventListener("click", () => segAdd("attr"));
$("#seg-add-event").addEventListener("click", () => segAdd("event"));
$("#seg-join").addEventListener("change", segChanged);
$("#seg-save").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const { condition, rows } = segCondition({ mark: true });
    if (rows.length !== document.querySelectorAll("#seg-rows .seg-row").length || !rows.length) {
      $("#seg-error").textContent = rows.length ? "" : t("请至少添加一个条件");
      return;
    }
    try {
      await api("segments", { method: "POST", body: { name: e.target.name.value, condition } });
    } catch (err) { showSegError(err, rows); return; }
    toast(t("人群已保存"));
    e.target.reset();
    loadSegments();
  } catch (err) { toast(err.message); }
});

async function loadSegments() {
  const segments = await api("segments");
  const list = $("#seg-list");
  list.replaceChildren();
  const filter = $("#filter-segment");
  filter.replaceChildren(el("option", { value: "", text: t("全部人群") }));
  for (const s of segments) {
    const count = el("strong", { text: "…" });
    list.append(el("li", {}, el("span", { text: s.name }), el("span", { text: " · " }), count,
      el("button", { class: "link", text: t("查看线索"), onclick: () => {
        $("#filter-segment").value = String(s.id);
        state.filters = { ...state.filters, segment: String(s.id) }; state.page = 1; showTab("leads"); loadLeads(); } })));
    filter.append(el("option", { value: String(s.id), text: s.name }));
    api(`segments/${s.id}/preview`).then((p) => { count.textContent = fmt(tn("{n} 人", "{n} 人", p.count), { n: p.count }); }).catch(() => { count.textContent = "?"; });
  }
}

// --- score distribution (plain SVG) -------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function loadStats() {
  const [stats, rules] = await Promise.all([api("leads/stats"), api("scoring-rules")]);
  const bars = stats.histogram;
  const W = 640, H = 240, pad = 30;
  const max = Math.max(1, ...bars.map((b) => b.count));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("评分分布") });
  const bw = bars.length ? (W - pad * 2) / bars.length : 0;
  bars.forEach((b, i) => {
    const h = ((H - pad * 2) * b.count) / max;
    const x = pad + i * bw;
    const grade = b.from >= 80 ? "A" : b.from >= 50 ? "B" : "C";
    chart.append(svg("rect", { x: x + 2, y: H - pad - h, width: Math.max(1, bw - 4), height: h, class: `bar g-${grade}` }));
    const count = svg("text", { x: x + bw / 2, y: H - pad - h - 4, "text-anchor": "middle", class: "lbl" });
    count.textContent = String(b.count);
    const label = svg("text", { x: x + bw / 2, y: H - pad + 14, "text-anchor": "middle", class: "lbl" });
    label.textContent = String(b.from);
    chart.append(count, label);
  });
  chart.append(svg("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, class: "axis" }));
  $("#chart").replaceChildren(chart);
  $("#grade-counts").replaceChildren(...Object.entries(stats.grades).map(([g, n]) =>
    el("span", { class: `grade g-${g === "-" ? "none" : g}`, text: `${g === "-" ? t("未评分") : g} ${n}` })));
  $("#rule-rows").replaceChildren(...rules.map((r) => {
    const tr = el("tr", { "data-rule": String(r.id), class: r.is_active ? "" : "off" },
      el("td", { text: r.name + (r.is_active ? "" : t("（已停用）")) }), el("td", { class: "num", text: (r.points > 0 ? "+" : "") + r.points }),
      el("td", {}, el("code", { text: JSON.stringify(r.condition) })));
    if (isAdmin()) tr.append(el("td", {}, el("button", { type: "button", class: "link", "data-action": "edit", text: t("编辑"), onclick: () => ruleEdit(tr, r) })));
    return tr;
  }));
  $("#rescore-row").hidden = state.me?.role !== "admin";
  loadFunnel();
}

// The lead lifecycle funnel (GET leads/funnel, definitions in docs/crm.md): counts per week or
// room, each stage with its conversion from the stage before.
const FUNNEL_STAGES = [
  ["viewers", t("观众"), null], ["engaged", t("互动"), "engaged_rate"],
  ["hot", t("热线索"), "hot_rate"], ["customers", t("成交客户"), "customer_rate"],
];
const pct = (rate) => (rate == null ? "—" : `${rate}%`);

// A week by its Monday; a room by its title (from the funnel's row), linked to its 战报, or by
// its id when the room no longer exists.
function funnelCohort(by, row) {
  if (by === "week") return el("th", { scope: "row", text: row.cohort });
  if (!row.title) return el("th", { scope: "row", text: fmt(t("直播间 #{id}"), { id: row.cohort }) });
  return el("th", { scope: "row", title: row.title },
    el("a", { href: `/console/rooms/${row.cohort}/report/`, "data-room-report": row.cohort, text: row.title }));
}

async function loadFunnel(by = state.funnelBy || "week") {
  state.funnelBy = by;
  for (const b of document.querySelectorAll("#funnel-by button")) b.classList.toggle("on", b.dataset.by === by);
  const data = await api(`leads/funnel?by=${by}`);
  if (state.funnelBy !== by) return;  // another choice was made while this one loaded
  $("#funnel-hint").textContent = fmt(t("观众：进入直播间；互动：发言、点赞、关注、分享、点击商品或领券；热线索：进入后达到最高等级 {grade}；成交客户：进入后下单或核销优惠券，或状态为已成交。每一级只计入已到达上一级的人，百分比为上一级到这一级的转化率。"), { grade: data.hot_grade || "—" });
  $("#funnel-head").replaceChildren(el("tr", {},
    el("th", { text: by === "week" ? t("周（周一起）") : t("直播间") }),
    ...FUNNEL_STAGES.map(([, label]) => el("th", { class: "num", text: label })),
    el("th", { class: "num", text: t("总转化") })));
  drawFunnelChart(by, data.rows);
  if (!data.rows.length) {
    $("#funnel-rows").replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "hint", text: t("还没有进入直播间的记录") })));
    return;
  }
  $("#funnel-rows").replaceChildren(...data.rows.map((row) => el("tr", { "data-cohort": row.cohort },
    funnelCohort(by, row),
    ...FUNNEL_STAGES.map(([stage, , rate]) => el("td", { class: "num", "data-stage": stage },
      el("strong", { text: String(row[stage]) }),
      rate ? el("small", { class: "rate", "data-rate": stage, text: ` ${pct(row[rate])}` }) : "")),
    el("td", { class: "num", "data-stage": "overall", text: pct(row.overall_rate) }))));
}

for (const b of document.querySelectorAll("#funnel-by button")) b.addEventListener("click", () => loadFunnel(b.dataset.by));

// The same rows as the table, drawn with ECharts (static/vendor/echarts.min.js, loaded before
// this module as on the 战报 page): one horizontal group of four bars per week or room, newest
// on top as in the table. Grouped, not stacked: each stage is a subset of the one before, so
// stacking would count a customer four times. Bars rather than ECharts' funnel series, which
// draws one funnel only and could not set weeks or rooms side by side. Horizontal so twelve
// cohorts fit a phone's width without scrolling sideways.
const FUNNEL_COLORS = ["#9db9ff", "#5b8ff9", "#f5a623", "#e4393c"];
let funnelChart = null;

function drawFunnelChart(by, rows) {
  const box = $("#funnel-chart");
  box.hidden = !rows.length || !globalThis.echarts;
  if (box.hidden) return;
  const small = window.innerWidth < 600;
  // Four bars of ~12 px per cohort, plus the legend above and the value axis below.
  box.style.height = `${64 + rows.length * 64}px`;
  if (!funnelChart || funnelChart.getDom() !== box) funnelChart = globalThis.echarts.init(box, null, { renderer: "canvas" });
  else funnelChart.resize();
  const names = rows.map((row) => (by === "week" ? row.cohort : row.title || fmt(t("直播间 #{id}"), { id: row.cohort })));
  funnelChart.setOption({
    // No animation: a screenshot or a quick reader never catches bars halfway grown.
    animation: false,
    color: FUNNEL_COLORS,
    legend: { top: 4 },
    // A phone keeps room for a whole week's date (2026-11-02) at the left, and for the widest
    // label (2 · 66.7%) right of the longest bar.
    grid: { left: small ? 84 : 112, right: small ? 68 : 88, top: 36, bottom: 28 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: names, axisLabel: { width: small ? 76 : 104, fontSize: 11, overflow: "truncate" } },
    // Series data are the API's counts as they are; the conversion from the stage before
    // (the API's own rate, not recomputed) is only in the label.
    series: FUNNEL_STAGES.map(([stage, label, rate]) => ({
      name: label,
      type: "bar",
      barGap: "10%",
      data: rows.map((row) => row[stage]),
      label: {
        show: true,
        position: "right",
        fontSize: small ? 10 : 11,
        formatter: ({ dataIndex, value }) => (rate ? `${value} · ${pct(rows[dataIndex][rate])}` : String(value)),
      },
    })),
  }, true);
  box.dataset.by = by;
}

window.addEventListener("resize", () => { if (funnelChart && !$("#funnel-chart").hidden) funnelChart.resize(); });

// An admin edits a rule's name, points and whether it is on without JSON; errors go under
// the field they are about. Scores change once re-scored (the button above).
// The condition is edited with the segment builder's pickers (GET segments/fields), and a
// live preview (POST scoring-rules/{id}/preview) says how many leads match and how many
// would change grade once re-scored.
async function ruleEdit(tr, rule) {
  await loadSegFields();
  const field = (name, attrs) => el("label", {}, `${RULE_FIELDS[name]} `, el("input", { name, ...attrs }), el("div", { class: "err field-err", "data-for": name }));
  const active = { type: "checkbox" };
  if (rule.is_active) active.checked = "";
  const shape = conditionRows(rule.condition);
  const rows = el("div", { class: "rule-rows" });
  const join = el("select", { name: "join" }, el("option", { value: "all", text: t("满足全部条件") }), el("option", { value: "any", text: t("满足任一条件") }));
  const preview = el("p", { class: "hint", id: "rule-preview" });
  let timer;
  const changed = () => { clearTimeout(timer); timer = setTimeout(runPreview, 300); };
  const opts = { onChange: changed, exclude: ["score", "grade"] };
  const conditionBox = shape
    ? el("fieldset", { class: "rule-cond" }, el("legend", { text: t("条件") }), join, rows,
      el("p", { class: "row" },
        el("button", { type: "button", class: "link", "data-action": "add-attr", text: t("+ 属性条件"), onclick: () => { rows.append(segRow("attr", opts)); changed(); } }),
        el("button", { type: "button", class: "link", "data-action": "add-event", text: t("+ 行为条件"), onclick: () => { rows.append(segRow("event", opts)); changed(); } })),
      el("div", { class: "err field-err", "data-for": "condition" }), preview)
    : el("p", { class: "hint" }, t("条件较复杂，此处不可编辑："), el("code", { text: JSON.stringify(rule.condition) }));
  if (shape) {
    join.value = shape.join;
    join.addEventListener("change", changed);
    for (const item of shape.items) {
      const row = segRow("event" in (item.not || item) ? "event" : "attr", opts);
      rows.append(row);
      fillRow(row, item);
    }
  }
  const form = el("form", { class: "inline rule-edit" },
    field("name", { value: rule.name, required: "", maxlength: "100" }),
    field("points", { type: "number", step: "1", value: String(rule.points), required: "" }),
    el("label", {}, el("input", { name: "is_active", ...active }), ` ${t("启用")}`),
    conditionBox,
    el("button", { type: "submit", text: t("保存") }),
    el("button", { type: "button", class: "link", text: t("取消"), onclick: () => loadStats() }),
    el("div", { class: "err field-err", "data-for": "_" }));
  const currentCondition = ({ mark = false } = {}) => conditionOf(rows, join.value, { mark });
  // A 400 about the condition names its part ("all[1].value: …"): under that row.
  const conditionError = (err, rowList) => {
    const text = [].concat(err?.data?.fields?.condition || "").join(" ");
    const m = /^(?:all|any)\[(\d+)\](?:\.(\w+))?/.exec(text);
    const row = m ? rowList[Number(m[1])] : null;
    if (row) row.querySelector(".field-err").textContent = { value: t("值无效"), op: t("条件不适用于该字段"), field: t("未知字段") }[m[2]] || t("条件无效");
    else if (text) form.querySelector('.field-err[data-for="condition"]').textContent = t("条件无效");
    return Boolean(text);
  };
  async function runPreview() {
    if (!shape) return;
    const { condition, rows: rowList } = currentCondition();
    form.querySelector('.field-err[data-for="condition"]').textContent = "";
    if (!Object.values(condition)[0].length) { preview.textContent = t("请至少添加一个条件"); return; }
    try {
      const data = await api(`scoring-rules/${rule.id}/preview`, { method: "POST", body: { condition, points: Number(form.points.value) || 0, is_active: form.is_active.checked } });
      preview.textContent = fmt(t("符合条件 {matching} 人；重新评分后 {moved} 人等级变化（升 {up}，降 {down}）"), { matching: data.matching, moved: data.moved, up: data.moved_up, down: data.moved_down });
    } catch (err) {
      preview.textContent = "";
      conditionError(err, rowList);
    }
  }
  form.points.addEventListener("input", changed);
  form.is_active.addEventListener("change", changed);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const box of form.querySelectorAll(".field-err")) box.textContent = "";
    const data = new FormData(form);
    const body = { name: String(data.get("name")).trim(), points: Number(data.get("points")), is_active: data.get("is_active") === "on" };
    let rowList = [];
    if (shape) {
      const current = currentCondition({ mark: true });
      rowList = current.rows;
      if (rowList.length !== rows.querySelectorAll(".seg-row").length) return; // a row lacks its value
      if (!rowList.length) { form.querySelector('.field-err[data-for="condition"]').textContent = t("请至少添加一个条件"); return; }
      body.condition = current.condition;
    }
    try {
      await api(`scoring-rules/${rule.id}`, { method: "PATCH", body });
    } catch (err) {
      const fields = err.data?.fields || {};
      let shown = conditionError(err, rowList);
      for (const [name, msgs] of Object.entries(fields)) {
        if (name === "condition") continue;
        const box = form.querySelector(`.field-err[data-for="${name}"]`);
        if (box) { box.textContent = [].concat(msgs).join(" "); shown = true; }
      }
      if (!shown) form.querySelector('.field-err[data-for="_"]').textContent = err.message;
      return;
    }
    toast(t("规则已保存，重新评分后生效"));
    loadStats();
  });
  const cell = el("td", { colspan: "4" }, form);
  tr.replaceChildren(cell);
  form.querySelector("input").focus();
  runPreview();
}
const RULE_FIELDS = { name: t("规则"), points: t("分值") };

$("#rescore").addEventListener("click", async () => {
  $("#rescore-state").textContent = t("评分中…");
  const result = await api("leads/rescore", { method: "POST" });
  if (result.state === "done") {
    $("#rescore-state").textContent = fmt(t("完成：{contacts} 条线索，{changed} 条变化，用时 {seconds} 秒"), { contacts: result.contacts, changed: result.changed, seconds: result.seconds.toLocaleString(lang(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }) });
    loadStats();
    return;
  }
  const poll = setInterval(async () => {
    const p = await api("leads/rescore");
    $("#rescore-state").textContent = fmt(t("进度 {done} / {total}"), { done: p.done, total: p.total });
    if (p.state === "done") { clearInterval(poll); loadStats(); }
  }, 1000);
});

// --- tasks and notifications --------------------------------------------------------------

async function loadTasks() {
  const data = await api("tasks");
  $("#task-list").replaceChildren(...data.results.map(taskItem));
  if (!data.results.length) $("#task-list").append(el("li", { class: "hint", text: t("暂无待办") }));
}

let seenNotifications = null;
async function loadNotifications() {
  let items;
  try { items = await api("notifications"); } catch { return; }
  const unread = items.filter((n) => !n.read_at);
  $("#bell-count").textContent = String(unread.length);
  if (seenNotifications !== null) {
    for (const n of unread) if (!seenNotifications.has(n.id)) toast(n.title, { hot: true });
  }
  seenNotifications = new Set(items.map((n) => n.id));
  const panel = $("#notifications");
  panel.replaceChildren(...items.map((n) => el("div", { class: n.read_at ? "n read" : "n" },
    el("strong", { text: n.title }), el("small", { text: ` ${fmtTime(n.created_at)}` }),
    el("button", { class: "link", text: t("查看"), onclick: async () => {
      await api(`notifications/${n.id}/read`, { method: "POST" });
      panel.hidden = true; showTab("leads"); if (n.data.contact) openLead(n.data.contact); loadNotifications(); } }))));
}
$("#bell").addEventListener("click", () => { $("#notifications").hidden = !$("#notifications").hidden; });

async function connectRealtime() {
  // The staff WebSocket (static/shared/ws.js) pushes hints; the notification rows are the
  // truth, so without it the workspace polls.
  try {
    const { connectStaff } = await import("/static/shared/ws.js");
    connectStaff({ token: state.token, onEvent: () => loadNotifications() });
    setInterval(loadNotifications, 60000);
  } catch {
    setInterval(loadNotifications, 10000);
  }
}

// --- CSV import / export jobs (background, with progress) ----------------------------------

async function startExport(format) {
  const params = query();
  params.delete("page"); params.delete("page_size");
  // The previous job's link goes at once: a click before the new job answers must not
  // download the previous file.
  jobReset();
  try {
    // The format goes in the body: the query string carries the list's filters.
    const job = await api(`leads/export?${params}`, { method: "POST", body: { format } });
    watchJob(job.id);
  } catch { toast(t("导出失败")); }
}

$("#import-file").addEventListener("change", () => {
  const file = $("#import-file").files[0];
  $("#import-form").hidden = !file;
  $("#import-name").textContent = file ? file.name : "";
});

$("#import-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  form.set("file", $("#import-file").files[0]);
  // Multipart: no JSON body, so not through api().
  const res = await fetch("/api/v1/leads/import", {
    method: "POST", headers: { Authorization: `Token ${state.token}` }, body: form,
  });
  const data = await res.json().catch(() => null);
  if (res.status !== 202) { toast(data?.message || t("导入失败")); return; }
  e.target.reset(); e.target.hidden = true; $("#import-name").textContent = "";
  watchJob(data.id);
});

function jobReset() {
  $("#job-progress").hidden = false;
  $("#job-download").hidden = true;
  $("#job-bar").value = 0;
  $("#job-text").textContent = "";
  $("#job-errors").replaceChildren();
}

async function watchJob(id) {
  jobReset();
  for (;;) {
    let job;
    try { job = await api(`leads/jobs/${id}`); } catch { return; }
    const verb = job.kind === "import" ? t("导入") : t("导出");
    $("#job-bar").max = Math.max(job.total, 1);
    $("#job-bar").value = job.processed;
    if (job.state === "queued" || job.state === "running") {
      $("#job-text").textContent = fmt(t("{verb}中：{done} / {total} 行"), { verb, done: job.processed, total: job.total });
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (job.kind === "import") {
      $("#job-text").textContent = job.state === "done"
        ? fmt(t("导入完成：新建 {created}，更新 {merged}，错误 {errors} 行"), { created: job.created, merged: job.merged, errors: job.error_count })
        : fmt(t("导入中断：{message}（已保存 {done} 行）"), { message: job.message, done: job.processed });
      $("#job-errors").replaceChildren(...job.errors.slice(0, 50).map((err) =>
        el("li", { text: fmt(t("第 {row} 行 {field}：{message}"), err) })));
      loadLeads();
    } else if (job.state === "done") {
      $("#job-text").textContent = fmt(t("导出完成：{total} 行（手机号按权限脱敏，导出已记录审计）"), { total: job.total });
      const link = $("#job-download");
      link.hidden = false;
      link.onclick = (e) => { e.preventDefault(); downloadJob(job.download); };
    } else {
      $("#job-text").textContent = job.message || t("导出失败");
    }
    return;
  }
}

// The server names the file (leads.csv / leads.xlsx) in Content-Disposition.
function attachmentName(res) {
  const header = res.headers.get("Content-Disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(header);
  return plain ? plain[1] : "leads";
}

async function downloadJob(path) {
  const res = await fetch(path, { headers: { Authorization: `Token ${state.token}` } });
  if (!res.ok) { toast(t("下载失败")); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: attachmentName(res) });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// --- sales teams (round-robin within a team, per-team follow-up rules) --------------------

const LAPSE = { pool: t("退回公海"), next_member: t("转给团队下一位成员") };
const SLA_MAX = 7 * 24 * 60; // the API's bound (crm.models.HOT_LEAD_SLA_MAX_MINUTES)
const TEAM_FIELDS = {
  name: t("团队名称"), members: t("成员"), is_default: t("默认团队"),
  hot_lead_sla_minutes: t("热线索跟进时限（分钟）"), lapse_action: t("超时未跟进时"),
  team: t("团队"), priority: t("优先级"), room: t("直播间ID"), segment: t("人群"),
};
const teamsState = { teams: [], rules: [], people: [], segments: [] };

$('[data-tab="teams"]').addEventListener("click", () => loadTeams());

// --- invites: the leaderboard and the invites fraud signals flagged -----------------------

const FLAGS = { self_invite: t("自己邀请自己"), cycle: t("循环邀请"), same_device: t("同一设备"), ip_cluster: t("同一IP集中邀请") };

async function loadInvites() {
  const room = String(new FormData($("#invite-filter")).get("room") || "").trim();
  let data;
  try {
    data = await api(`invites${room ? `?room=${encodeURIComponent(room)}` : ""}`);
  } catch (err) {
    $("#invite-error").textContent = [].concat(err.data?.fields?.room || err.message).join(" ");
    return;
  }
  $("#invite-error").textContent = "";
  $("#invite-rows").replaceChildren(...data.leaderboard.map((r) => el("tr", {},
    el("td", { text: r.nickname || `#${r.contact_id}` }), el("td", { class: "num", text: String(r.direct) }), el("td", { class: "num", text: String(r.total) }))));
  if (!data.leaderboard.length) $("#invite-rows").append(el("tr", {}, el("td", { class: "hint", colspan: "3", text: t("暂无邀请") })));
  $("#invite-flags").replaceChildren(...data.flagged.map((f) => el("li", { "data-flag": f.flag },
    el("strong", { text: FLAGS[f.flag] || f.flag }),
    el("span", { text: ` ${fmt(t("{inviter} 邀请 {invitee}"), { inviter: f.inviter || `#${f.inviter_id}`, invitee: f.invitee || `#${f.invitee_id}` })}` }),
    el("div", { class: "ctx", text: [fmtTime(f.created_at), f.room ? fmt(t("直播间 #{room}"), { room: f.room }) : ""].filter(Boolean).join(" · ") }))));
  if (!data.flagged.length) $("#invite-flags").append(el("li", { class: "hint", text: t("暂无被标记的邀请") }));
}

$('[data-tab="invites"]').addEventListener("click", () => loadInvites());
$("#invite-filter").addEventListener("submit", (e) => { e.preventDefault(); loadInvites(); });

function isAdmin() { return state.me?.role === "admin"; }

// Field-level messages of a 400, one line each, labelled in the page's language.
function showErrors(box, err) {
  const fields = Object.entries(err?.data?.fields || {});
  box.replaceChildren(...(fields.length
    ? fields.map(([k, msgs]) => el("div", { text: fmt(t("{field}：{message}"), { field: TEAM_FIELDS[k] || k, message: [].concat(msgs).join(" ") }) }))
    : [el("div", { text: err?.message || t("保存失败") })]));
}

function checkbox(name, value, checked) {
  const attrs = { type: "checkbox", name, value };
  if (checked) attrs.checked = "";
  return el("input", attrs);
}

function slaText(team) {
  return team.hot_lead_sla_minutes == null
    ? t("跟进时限：组织默认")
    : fmt(t("跟进时限：{n} 分钟"), { n: team.hot_lead_sla_minutes });
}

async function loadTeams() {
  const admin = isAdmin();
  const [teams, rules, people, segments] = await Promise.all([
    api("teams"), api("assignment-rules"),
    admin ? api("teams/candidates") : [], admin ? api("segments") : [],
  ]);
  Object.assign(teamsState, { teams, rules, people, segments });
  renderTeams();
  renderRules();
}

function renderTeams() {
  const admin = isAdmin();
  const { teams } = teamsState;
  $("#team-list").replaceChildren(...teams.map((team) => teamRow(team, admin)));
  if (!teams.length) $("#team-list").append(el("li", { class: "hint", text: t("还没有团队：线索在全部销售中轮转") }));
  $("#team-form").hidden = !admin;
  if (admin) $("#team-form").replaceChildren(el("h3", { text: t("新建团队") }), teamForm(null));
}

function teamRow(team, admin) {
  const li = el("li", { "data-team": String(team.id) },
    el("strong", { text: team.name }),
    team.is_default ? el("span", { class: "grade", text: t("默认") }) : null,
    el("span", { class: "members", text: " " + (team.members.map((m) => m.username).join("、") || t("（暂无成员）")) }),
    el("div", { class: "ctx team-rules-text", text: `${slaText(team)} · ${fmt(t("超时未跟进：{action}"), { action: LAPSE[team.lapse_action] || team.lapse_action })}` }));
  if (admin) {
    li.append(
      el("button", { class: "link", "data-action": "edit", text: t("编辑"), onclick: () => li.replaceChildren(teamForm(team)) }),
      el("button", { class: "link", "data-action": "delete", text: t("删除"), onclick: async () => {
        if (!confirm(fmt(t("删除团队「{name}」？"), { name: team.name }))) return;
        try { await api(`teams/${team.id}`, { method: "DELETE" }); } catch (err) { toast(err.message || t("删除失败")); }
        loadTeams();
      } }));
  }
  return li;
}

// One form for creating (team = null) and editing a team: name, members, default, rules.
function teamForm(team) {
  const form = el("form", { class: "team-form", "data-form": team ? "edit" : "new" });
  const chosen = new Set((team?.members || []).map((m) => m.id));
  // A member who is no longer a candidate (deactivated, role changed) still shows, to be removed.
  const people = [...teamsState.people];
  for (const m of team?.members || []) if (!people.some((p) => p.id === m.id)) people.push(m);
  const lapse = el("select", { name: "lapse_action" },
    ...Object.entries(LAPSE).map(([value, label]) => {
      const attrs = { value, text: label };
      if ((team?.lapse_action || "pool") === value) attrs.selected = "";
      return el("option", attrs);
    }));
  const sla = { name: "hot_lead_sla_minutes", type: "number", min: "1", max: String(SLA_MAX), step: "1", placeholder: t("组织默认") };
  if (team?.hot_lead_sla_minutes != null) sla.value = String(team.hot_lead_sla_minutes);
  const name = { name: "name", required: "", maxlength: "64", placeholder: t("团队名称") };
  if (team) name.value = team.name;
  const errors = el("div", { class: "err" });
  form.append(
    el("label", {}, `${t("团队名称")} `, el("input", name)),
    el("fieldset", { class: "team-members" }, el("legend", { text: t("成员") }),
      ...people.map((p) => el("label", {}, checkbox("members", String(p.id), chosen.has(p.id)), ` ${p.username}`))),
    el("label", {}, checkbox("is_default", "on", team?.is_default), ` ${t("默认团队")}`),
    el("label", {}, `${t("热线索跟进时限（分钟）")} `, el("input", sla)),
    el("label", {}, `${t("超时未跟进时")} `, lapse),
    el("p", { class: "hint", text: t("留空则用组织的跟进时限；转给下一位成员时跳过已超时的成员，无人可转则退回公海。") }),
    errors,
    el("div", { class: "row" },
      el("button", { type: "submit", text: team ? t("保存") : t("新建团队") }),
      team ? el("button", { type: "button", class: "link", text: t("取消"), onclick: () => renderTeams() }) : null));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const minutes = String(data.get("hot_lead_sla_minutes") || "").trim();
    const body = {
      name: data.get("name"),
      members: data.getAll("members").map(Number),
      is_default: data.get("is_default") === "on",
      hot_lead_sla_minutes: minutes === "" ? null : Number(minutes),
      lapse_action: data.get("lapse_action"),
    };
    try {
      await api(team ? `teams/${team.id}` : "teams", { method: team ? "PUT" : "POST", body });
      toast(t("团队已保存"));
      loadTeams();
    } catch (err) { showErrors(errors, err); }
  });
  return form;
}

// --- assignment rules: which team gets a lead (room / segment → team, by priority) --------

function ruleText(rule) {
  const targets = [];
  if (rule.room != null) targets.push(fmt(t("直播间 #{room}"), { room: rule.room }));
  if (rule.segment != null) targets.push(fmt(t("人群「{name}」"), { name: rule.segment_name || `#${rule.segment}` }));
  return fmt(t("优先级 {priority}：{targets} → {team}"), { priority: rule.priority, targets: targets.join(t("、")), team: rule.team_name });
}

function renderRules() {
  const admin = isAdmin();
  const { rules, teams } = teamsState;
  const list = el("ul", { id: "rule-list", class: "task-list" }, ...rules.map((rule) => {
    const li = el("li", { "data-rule": String(rule.id) }, el("span", { text: ruleText(rule) }));
    if (admin) {
      li.append(
        el("button", { class: "link", "data-action": "edit", text: t("编辑"), onclick: () => li.replaceChildren(ruleForm(rule)) }),
        el("button", { class: "link", "data-action": "delete", text: t("删除"), onclick: async () => {
          if (!confirm(t("删除这条分配规则？"))) return;
          try { await api(`assignment-rules/${rule.id}`, { method: "DELETE" }); } catch (err) { toast(err.message || t("删除失败")); }
          loadTeams();
        } }));
    }
    return li;
  }));
  if (!rules.length) list.append(el("li", { class: "hint", text: t("还没有分配规则：线索进入默认团队") }));
  // replaceChildren() would print a null as the text "null": only real nodes go in.
  const canAdd = admin && teams.length > 0;
  $("#team-rules").replaceChildren(
    el("h3", { text: t("分配规则") }),
    el("p", { class: "hint", text: t("按优先级从小到大匹配第一条：线索在该直播间活跃，或属于该人群。") }),
    list,
    ...(canAdd ? [el("h3", { text: t("添加规则") }), ruleForm(null)] : []));
}

function ruleForm(rule) {
  const form = el("form", { class: "team-form rule-form", "data-form": rule ? "edit" : "new" });
  const option = (value, label, selected) => {
    const attrs = { value: String(value), text: label };
    if (selected) attrs.selected = "";
    return el("option", attrs);
  };
  const team = el("select", { name: "team", required: "" },
    ...teamsState.teams.map((tm) => option(tm.id, tm.name, rule?.team === tm.id)));
  const segment = el("select", { name: "segment" }, option("", t("（不按人群）"), rule?.segment == null),
    ...teamsState.segments.map((s) => option(s.id, s.name, rule?.segment === s.id)));
  const priority = { name: "priority", type: "number", min: "0", max: "100000", step: "1", required: "", value: String(rule?.priority ?? 100) };
  const room = { name: "room", type: "number", min: "1", step: "1", placeholder: t("直播间ID") };
  if (rule?.room != null) room.value = String(rule.room);
  const errors = el("div", { class: "err" });
  form.append(
    el("label", {}, `${t("优先级")} `, el("input", priority)),
    el("label", {}, `${t("直播间ID")} `, el("input", room)),
    el("label", {}, `${t("人群")} `, segment),
    el("label", {}, `→ ${t("团队")} `, team),
    errors,
    el("div", { class: "row" },
      el("button", { type: "submit", text: rule ? t("保存") : t("添加规则") }),
      rule ? el("button", { type: "button", class: "link", text: t("取消"), onclick: () => renderRules() }) : null));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const roomValue = String(data.get("room") || "").trim();
    const body = {
      team: Number(data.get("team")),
      priority: Number(data.get("priority")),
      room: roomValue === "" ? null : Number(roomValue),
      segment: data.get("segment") ? Number(data.get("segment")) : null,
    };
    try {
      await api(rule ? `assignment-rules/${rule.id}` : "assignment-rules", { method: rule ? "PUT" : "POST", body });
      toast(t("分配规则已保存"));
      loadTeams();
    } catch (err) { showErrors(errors, err); }
  });
  return form;
}

// --- start --------------------------------------------------------------------------------

async function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  let me;
  try { me = await api("me"); } catch { return; }
  state.me = { user_id: me.id, role: me.role };
  $("#whoami").textContent = `${me.username} · ${me.org_name}`;
  await loadLeads();
  loadSegments().catch(() => {});
  loadNotifications();
  connectRealtime();
}

if (state.token) start(); else logout();
