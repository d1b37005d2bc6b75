// 956100 agent desktop: the screen pop of the call ringing on this agent's phone, the LLM
// summary, knowledge suggestions, the ticket form and knowledge proposals.
// Everything is written with textContent (never innerHTML): pop fields come from callers.
"use strict";

const LLM_STATUS = {
  pending: "生成中……", ok: "", timeout: "超时，请参考规则摘要", error: "暂不可用，请参考规则摘要",
  invalid: "结果无效，请参考规则摘要", disabled: "未启用", skipped: "繁忙，已跳过",
};
const TICKET_STATUS = {
  pending: "智能填单中……", ok: "已智能填单，请核对", timeout: "智能填单超时，已按规则预填",
  error: "智能填单不可用，已按规则预填", invalid: "智能填单结果无效，已按规则预填",
  disabled: "已按规则预填", skipped: "已按规则预填",
};
const STATES = {
  queued: "排队中", ringing: "来电振铃中，请接听", connected: "通话中",
  ended: "通话已结束", abandoned: "来电人已挂机",
};
const SECTIONS = [["situation", "情况"], ["done", "已办理"], ["pending", "待处理"], ["mood", "情绪"]];
const FIELDS = [["type", "t-type"], ["account_tail", "t-account"], ["problem", "t-problem"],
  ["requested_action", "t-action"], ["contact", "t-contact"], ["priority", "t-priority"]];
const API = "/agent/api";
const $ = (id) => document.getElementById(id);
let agent = null;
let shown = null; // {handoff_id, version}
let current = null; // the pop on screen
let retry = 500;
let types = { types: {}, priorities: {} };
let edited = false; // the agent touched the ticket form of the pop on screen
let formFor = null; // handoff id the ticket form was filled for

function text(id, value) { $(id).textContent = value == null || value === "" ? "—" : String(value); }

const api = (method, path, body) => apiCall(API, method, path, body);  // common.js

function rows(tbody, list) {
  const body = $(tbody);
  body.replaceChildren();
  for (const cells of list) {
    const tr = document.createElement("tr");
    for (const c of cells) tr.appendChild(el("td", null, c == null ? "" : c));
    body.appendChild(tr);
  }
}

function sections(id, summary) {
  const box = $(id);
  box.replaceChildren();
  if (!summary) return;
  for (const [key, label] of SECTIONS) {
    const p = el("p");
    p.append(el("b", null, label), summary[key] || "");
    box.appendChild(p);
  }
}

function clock(t) { return `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, "0")}`; }

// ---- the ticket form ------------------------------------------------------------------
function ticketLine(pop) { return ["oil", "gas"].includes(pop.line) ? pop.line : "general"; }

function fillOptions(select, options, value) {
  select.replaceChildren();
  const entries = Object.entries(options);
  if (value && !(value in options)) entries.unshift([value, value]);
  for (const [v, label] of entries) {
    const o = el("option", null, label);
    o.value = v;
    select.appendChild(o);
  }
  select.value = value || (entries[0] || [""])[0];
}

function fillTicket(pop) {
  const t = pop.ticket || {};
  const line = ticketLine(pop);
  fillOptions($("t-type"), types.types[line] || {}, t.type);
  fillOptions($("t-priority"), types.priorities, t.priority || "normal");
  $("t-account").value = t.account_tail || "";
  $("t-problem").value = t.problem || "";
  $("t-action").value = t.requested_action || "";
  $("t-contact").value = t.contact || "";
  const filled = new Set(t.llm_filled || []);
  for (const [key, id] of FIELDS) $(id).classList.toggle("llm", filled.has(key));
}

function renderTicket(pop) {
  $("ticket-status").textContent = TICKET_STATUS[pop.ticket_status] ?? "";
  if (formFor !== pop.handoff_id) {
    formFor = pop.handoff_id;
    edited = false;
    $("ticket-result").textContent = "";
    $("ticket-result").className = "result";
    fillTicket(pop);
    api("GET", `/tickets/${encodeURIComponent(pop.handoff_id)}`)
      .then((d) => { if (d.ticket && formFor === pop.handoff_id) showTicket(d.ticket, false); })
      .catch(() => {});
  } else if (!edited) {
    fillTicket(pop); // the LLM's completion arrived before the agent started editing
  }
}

function showTicket(ticket, fresh) {
  const box = $("ticket-result");
  box.className = "result ok";
  box.textContent = `${fresh ? "工单已提交" : "已提交过工单"}：${ticket.ticket_no}` +
    (ticket.work_order_no ? `，派单号 ${ticket.work_order_no}` : "");
  $("t-submit").textContent = "更新工单";
}

async function submitTicket(ev) {
  ev.preventDefault();
  if (!current) return;
  const body = { handoff_id: current.handoff_id, line: ticketLine(current),
    work_order: $("t-workorder").checked };
  for (const [key, id] of FIELDS) body[key] = $(id).value;
  $("t-submit").disabled = true;
  try {
    const d = await api("POST", "/tickets", body);
    showTicket(d.ticket, true);
    if (d.work_order_error) $("ticket-result").append(el("span", "muted", `（派单失败：${d.work_order_error}）`));
  } catch (e) {
    $("ticket-result").className = "result err";
    $("ticket-result").textContent = e.message;
  } finally {
    $("t-submit").disabled = false;
  }
}

// ---- knowledge suggestions and proposals --------------------------------------------------
function renderSuggestions(items) {
  const box = $("suggestions");
  box.replaceChildren();
  if (!items || !items.length) { box.textContent = "暂无推荐"; return; }
  for (const it of items) {
    const card = el("div", "card");
    card.append(el("div", "title", it.title), el("div", "passage", it.passage),
      el("div", "why", `${it.why || ""}${it.score != null ? " · 相关度 " + Number(it.score).toFixed(2) : ""}`));
    const bar = el("div");
    const verdict = (v, label) => {
      const b = el("button", null, label);
      b.type = "button";
      b.dataset.verdict = v;
      b.onclick = () => api("POST", "/kb/feedback", { entry_id: it.entry_id, version: it.version,
        handoff_id: current && current.handoff_id, verdict: v })
        .then(() => {
          bar.querySelectorAll("button[data-verdict]").forEach((x) => x.remove());
          bar.prepend(el("span", "done", v === "useful" ? "已标记有用 " : "已标记不对 "));
        })
        .catch((e) => bar.append(el("span", "result err", e.message)));
      return b;
    };
    const fix = el("button", null, "纠正");
    fix.type = "button";
    fix.onclick = () => {
      $("kb-entry").value = it.entry_id;
      $("kb-line").value = it.line || ticketLine(current || {});
      $("kb-title").value = it.title;
      $("kb-body").value = it.passage;
      $("kb-propose").open = true;
    };
    bar.append(verdict("useful", "有用"), verdict("wrong", "不对"), fix);
    card.appendChild(bar);
    box.appendChild(card);
  }
}

async function submitProposal(ev) {
  ev.preventDefault();
  const body = { line: $("kb-line").value, title: $("kb-title").value, body: $("kb-body").value,
    tags: $("kb-tags").value, handoff_id: current ? current.handoff_id : null };
  if ($("kb-entry").value) body.entry_id = $("kb-entry").value;
  const box = $("kb-result");
  try {
    const d = await api("POST", "/kb/proposals", body);
    box.className = "result ok";
    box.textContent = `已提交审核（${d.proposal.entry_id} 第${d.proposal.version}版），审核通过后生效`;
    $("kb-form").reset();
    $("kb-entry").value = "";
  } catch (e) {
    box.className = "result err";
    box.textContent = e.message;
  }
}

// ---- the pop ---------------------------------------------------------------------------
function render(pop, event) {
  if (shown && shown.handoff_id === pop.handoff_id && pop.version < shown.version) return;
  shown = { handoff_id: pop.handoff_id, version: pop.version };
  current = pop;
  $("waiting").hidden = true;
  $("pop").hidden = false;
  const banner = $("banner");
  banner.className = pop.state;
  banner.textContent = `${STATES[pop.state] || pop.state} · ${pop.reason_label}`;
  if (pop.ticket && ["urgent", "emergency"].includes(pop.ticket.priority)) {
    banner.append(" ", el("span", "urgent", "紧急"));
  }
  text("caller", pop.caller);
  text("line", pop.line_label);
  text("queue", pop.queue);
  text("reason", pop.reason_label);
  const id = pop.identity || {};
  text("identity", id.kind === "none" ? "无需验证"
    : `${id.kind_label}${id.tail ? "（尾号" + id.tail + "）" : ""} ${id.verified ? "已验证" : "未验证"}`);
  text("bot", pop.bot ? pop.bot.name : "");
  text("error", pop.error);
  sections("summary", pop.summary);
  $("llm-status").textContent = LLM_STATUS[pop.llm_status] ?? pop.llm_status;
  sections("llm-summary", pop.llm_summary);
  rows("intents", (pop.intents || []).map((i) => [i.text, i.intent || "（未识别）",
    (i.score || 0).toFixed(2), i.layer || ""]));
  rows("slots", Object.entries(pop.slots || {}));
  const tr = $("transcript");
  tr.replaceChildren();
  for (const line of pop.transcript || []) {
    const div = el("div", line.live ? "line live" : "line");
    if (line.live) div.title = "接通后来电人所说（实时转写）";
    div.append(el("span", "t", clock(line.t)),
      el("span", line.who, line.who === "ivr" ? "IVR：" : "来电人："), line.text);
    tr.appendChild(div);
  }
  tr.scrollTop = tr.scrollHeight;
  $("steps").textContent = (pop.steps || []).map((s) => s.label).join(" → ");
  renderSuggestions(pop.suggestions);
  renderTicket(pop);
  document.title = event === "offered" ? "【来电】956100 坐席工作台" : "956100 坐席工作台";
}

function withdrawn(msg) {
  if (!shown || shown.handoff_id !== msg.handoff_id) return;
  const reason = { answered_elsewhere: "已由其他坐席接听", no_answer: "未接听，已转其他坐席",
    abandoned: "来电人已挂机" }[msg.reason] || msg.reason;
  $("banner").className = "withdrawn";
  $("banner").textContent = `此来电${reason}`;
  document.title = "956100 坐席工作台";
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/agent/ws?agent=${encodeURIComponent(agent)}`);
  ws.onopen = () => { $("conn").textContent = "已连接"; $("conn").className = "ok"; retry = 500; };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "pop") render(msg.pop, msg.event);
    else if (msg.type === "withdrawn") withdrawn(msg);
    else if (msg.type === "suggestions" && current && msg.handoff_id === current.handoff_id) {
      current.suggestions = msg.items;
      renderSuggestions(msg.items);
    }
  };
  ws.onclose = () => {
    $("conn").textContent = "已断开，重连中";
    $("conn").className = "bad";
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

$("ticket-form").addEventListener("submit", submitTicket);
$("ticket-form").addEventListener("input", () => { edited = true; });
$("kb-form").addEventListener("submit", submitProposal);

fetch("/agent/me", { credentials: "same-origin" })
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error("login"))))
  .then(async (me) => {
    agent = me.agent;
    $("agent").textContent = agent;
    $("review-link").hidden = !["reviewer", "admin"].includes(me.role);
    try { types = await api("GET", "/tickets/types"); } catch (e) { /* the form keeps its values */ }
    connect();
  })
  .catch(() => { location.href = "/agent"; });
