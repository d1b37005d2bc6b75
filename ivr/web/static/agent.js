// 956100 agent desktop: shows the screen pop of the call ringing on this agent's phone.
// Everything is written with textContent (never innerHTML): pop fields come from callers.
"use strict";

const LLM_STATUS = {
  pending: "生成中……", ok: "", timeout: "超时，请参考上方摘要", error: "暂不可用，请参考上方摘要",
  invalid: "结果无效，请参考上方摘要", disabled: "未启用", skipped: "繁忙，已跳过",
};
const STATES = {
  queued: "排队中", ringing: "来电振铃中，请接听", connected: "通话中",
  ended: "通话已结束", abandoned: "来电人已挂机",
};
const SECTIONS = [["situation", "情况"], ["done", "已办理"], ["pending", "待处理"], ["mood", "情绪"]];
const $ = (id) => document.getElementById(id);
let agent = null;
let shown = null; // {handoff_id, version}
let retry = 500;

function text(id, value) { $(id).textContent = value == null || value === "" ? "—" : String(value); }

function rows(tbody, list) {
  const el = $(tbody);
  el.replaceChildren();
  for (const cells of list) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c == null ? "" : String(c);
      tr.appendChild(td);
    }
    el.appendChild(tr);
  }
}

function sections(id, summary) {
  const el = $(id);
  el.replaceChildren();
  if (!summary) return;
  for (const [key, label] of SECTIONS) {
    const p = document.createElement("p");
    const b = document.createElement("b");
    b.textContent = label;
    p.append(b, summary[key] || "");
    el.appendChild(p);
  }
}

function clock(t) { return `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, "0")}`; }

function render(pop, event) {
  if (shown && shown.handoff_id === pop.handoff_id && pop.version < shown.version) return;
  shown = { handoff_id: pop.handoff_id, version: pop.version };
  $("waiting").hidden = true;
  $("pop").hidden = false;
  const banner = $("banner");
  banner.className = pop.state;
  banner.textContent = `${STATES[pop.state] || pop.state} · ${pop.reason_label}`;
  if (pop.ticket && pop.ticket.priority === "urgent") {
    const u = document.createElement("span");
    u.className = "urgent";
    u.textContent = "紧急";
    banner.append(" ", u);
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
  const t = pop.ticket || {};
  const dl = $("ticket");
  dl.replaceChildren();
  for (const [label, value] of [["工单类型", t.type_label], ["业务线", pop.line_label],
    ["卡号/户号", t.account_tail ? "尾号" + t.account_tail : "—"], ["问题", t.problem],
    ["处理要求", t.requested_action], ["联系电话", t.contact], ["优先级", t.priority_label]]) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value || "—";
    dl.append(dt, dd);
  }
  const tr = $("transcript");
  tr.replaceChildren();
  for (const line of pop.transcript || []) {
    const div = document.createElement("div");
    div.className = "line";
    const ts = document.createElement("span");
    ts.className = "t";
    ts.textContent = clock(line.t);
    const who = document.createElement("span");
    who.className = line.who;
    who.textContent = line.who === "ivr" ? "IVR：" : "来电人：";
    div.append(ts, who, line.text);
    tr.appendChild(div);
  }
  tr.scrollTop = tr.scrollHeight;
  $("steps").textContent = (pop.steps || []).map((s) => s.label).join(" → ");
  if (event === "offered") document.title = "【来电】956100 坐席工作台";
  else document.title = "956100 坐席工作台";
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
  };
  ws.onclose = () => {
    $("conn").textContent = "已断开，重连中";
    $("conn").className = "bad";
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

fetch("/agent/me", { credentials: "same-origin" })
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error("login"))))
  .then((me) => { agent = me.agent; $("agent").textContent = agent; connect(); })
  .catch(() => { location.href = "/agent"; });
