// 956100 operations page: campaign list (polled every 2 s), actions, CSV import, charts.
// Plain DOM and <canvas>; no libraries.
"use strict";

const STATUS_ZH = { draft: "草稿", created: "未开始", running: "进行中", paused: "已暂停",
  stopped: "已停止", finished: "已完成", done: "已完成" };
const PROGRESS_ZH = [["contacts", "名单"], ["dialed", "已拨"], ["answered", "接通"],
  ["completed", "完成"], ["refused", "拒访"], ["machine", "答录机"], ["no_answer", "无人接"],
  ["busy", "忙线"], ["vacant", "空号"], ["suspended", "停机"], ["unreachable", "无法接通"],
  ["dnc_added", "免打扰"], ["pending", "待拨"]];
let selected = null;
let lastResultsAt = 0;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e[k] = v; else e.setAttribute(k, v);
  }
  for (const kid of kids) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return e;
}

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
  if (r.status === 401) { location.href = "/ops"; throw new Error("未登录"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
  return body;
}

function pct(p) { return p.contacts ? Math.round(100 * (p.contacts - p.pending) / p.contacts) : 0; }

function actions(c) {
  const out = [];
  const act = (name, label) => el("button", { class: "act", "data-action": name, onclick: async (ev) => {
    ev.stopPropagation();
    if (name === "stop" && !confirm(`确定停止任务 ${c.id}？停止后不再拨打新号码。`)) return;
    try { await api(`/api/ops/campaigns/${c.id}/${name}`, { method: "POST" }); say(`任务 ${c.id}：${label}成功`, true); refresh(); }
    catch (e) { say(`${label}失败：${e.message}`, false); }
  } }, label);
  if (c.status === "running") out.push(act("pause", "暂停"));
  else if (c.status === "paused") out.push(act("resume", "继续"));
  else if (c.status !== "stopped" && c.status !== "finished" && c.status !== "done") out.push(act("start", "开始"));
  if (c.status === "running" || c.status === "paused") out.push(act("stop", "停止"));
  return out;
}

function renderList(list) {
  const tb = document.querySelector("#campaigns tbody");
  tb.replaceChildren(...list.map((c) => {
    const p = c.progress;
    const tr = el("tr", { "data-id": c.id, class: c.id === selected ? "sel" : "",
      onclick: () => { selected = c.id; lastResultsAt = 0; refresh(); } },
      el("td", {}, c.id), el("td", {}, c.name),
      el("td", {}, el("span", { class: "st " + c.status }, STATUS_ZH[c.status] || c.status)),
      el("td", {}, el("div", { class: "bar", title: pct(p) + "%" }, el("i", { style: `width:${pct(p)}%` }))),
      el("td", { class: "done" }, `${p.completed}/${p.contacts}`),
      el("td", {}, ...actions(c)));
    return tr;
  }));
  if (!list.length) tb.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "还没有回访任务")));
}

function say(text, ok) { const m = document.getElementById("msg"); m.textContent = text; m.className = ok ? "ok" : "err"; }

// ---- charts ----------------------------------------------------------------------------
function ctx2d(id) {
  const c = document.getElementById(id);
  const ratio = window.devicePixelRatio || 1;
  const w = c.clientWidth || 400, h = c.clientHeight || 170;
  c.width = w * ratio; c.height = h * ratio;
  const g = c.getContext("2d"); g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h); g.font = "12px sans-serif"; g.textBaseline = "middle";
  return [g, w, h];
}

function empty(g, w, h) { g.fillStyle = "#999"; g.textAlign = "center"; g.fillText("暂无数据", w / 2, h / 2); }

function drawBars(id, labels, values, colors, fmt) {
  const [g, w, h] = ctx2d(id);
  const canvas = document.getElementById(id);
  canvas.dataset.points = String(values.filter((v) => v).length);
  if (!values.some((v) => v)) { empty(g, w, h); return; }
  const max = Math.max(...values.map((v) => v || 0)) || 1;
  const left = 10, bottom = h - 20, top = 14, slot = (w - left * 2) / values.length;
  values.forEach((v, i) => {
    const bh = ((v || 0) / max) * (bottom - top);
    const x = left + i * slot + slot * 0.15;
    g.fillStyle = colors[i % colors.length];
    g.fillRect(x, bottom - bh, slot * 0.7, bh);
    g.fillStyle = "#333"; g.textAlign = "center";
    g.fillText(fmt(v), x + slot * 0.35, bottom - bh - 7);
    g.fillText(labels[i].length > 8 ? labels[i].slice(0, 8) + "…" : labels[i], x + slot * 0.35, h - 9);
  });
}

function drawTrend(id, days) {
  const [g, w, h] = ctx2d(id);
  const pts = Object.entries(days).filter(([, s]) => s.nps !== null);
  document.getElementById(id).dataset.points = String(pts.length);
  if (!pts.length) { empty(g, w, h); return; }
  const left = 34, right = w - 10, top = 10, bottom = h - 20;
  const y = (v) => bottom - ((v + 100) / 200) * (bottom - top);
  g.strokeStyle = "#ddd"; g.fillStyle = "#888"; g.textAlign = "right";
  for (const v of [-100, 0, 100]) {
    g.beginPath(); g.moveTo(left, y(v)); g.lineTo(right, y(v)); g.stroke(); g.fillText(String(v), left - 4, y(v));
  }
  const x = (i) => pts.length === 1 ? (left + right) / 2 : left + (i * (right - left)) / (pts.length - 1);
  g.strokeStyle = "#1f6feb"; g.lineWidth = 2; g.beginPath();
  pts.forEach(([, s], i) => (i ? g.lineTo(x(i), y(s.nps)) : g.moveTo(x(i), y(s.nps))));
  g.stroke(); g.lineWidth = 1; g.textAlign = "center";
  pts.forEach(([day, s], i) => {
    g.fillStyle = "#1f6feb"; g.beginPath(); g.arc(x(i), y(s.nps), 3, 0, 7); g.fill();
    g.fillStyle = "#333"; g.fillText(String(s.nps), x(i), y(s.nps) - 9);
    g.fillStyle = "#888"; g.fillText(day.slice(5), x(i), h - 8);
  });
}

function renderResults(r) {
  document.getElementById("dname").textContent = `${r.campaign.id} · ${r.campaign.name}`;
  const a = document.getElementById("csv");
  a.href = `/api/ops/campaigns/${r.campaign.id}/answers.csv`; a.hidden = false;
  const t = document.getElementById("attempts-csv");
  t.href = `/api/ops/campaigns/${r.campaign.id}/attempts.csv`; t.hidden = false;
  const o = r.overall;
  const items = PROGRESS_ZH.map(([k, zh]) => [zh, r.progress[k]]);
  items.push(["CSAT 均分", o.csat_mean ?? "—"], ["NPS", o.nps ?? "—"]);
  document.getElementById("progress").replaceChildren(...items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const dist = o.csat_distribution;
  drawBars("dist", ["1分", "2分", "3分", "4分", "5分"], [1, 2, 3, 4, 5].map((k) => dist[String(k)] || 0),
    ["#c62828", "#ef6c00", "#f9a825", "#7cb342", "#2e7d32"], (v) => String(v));
  drawTrend("trend", r.by_day);
  const bots = Object.entries(r.by_bot).filter(([, s]) => s.csat_mean !== null);
  drawBars("bots", bots.map(([b]) => b), bots.map(([, s]) => s.csat_mean), ["#1f6feb"], (v) => v.toFixed(2));
  const box = document.getElementById("suggestions");
  const groups = Object.entries(r.suggestions);
  if (!groups.length) { box.textContent = "暂无"; box.className = "muted"; return; }
  box.className = "";
  box.replaceChildren(...groups.flatMap(([bot, texts]) => [el("h4", {}, bot),
    el("ul", {}, ...texts.map((t) => el("li", {}, t)))]));
}

async function refresh() {
  try {
    const data = await api("/api/ops/campaigns");
    document.getElementById("who").textContent = data.user ? `（${data.user}）` : "";
    if (selected === null && data.campaigns.length) selected = data.campaigns[0].id;
    renderList(data.campaigns);
    document.getElementById("updated").textContent = "更新于 " + new Date().toLocaleTimeString("zh-CN");
    if (selected !== null && Date.now() - lastResultsAt > 1900) {
      lastResultsAt = Date.now();
      renderResults(await api(`/api/ops/campaigns/${selected}/results`));
    }
  } catch (e) {
    document.getElementById("updated").textContent = "刷新失败：" + e.message;
  }
}

document.getElementById("create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  say("正在导入…", true);
  try {
    const r = await api("/api/ops/campaigns", { method: "POST", body: new FormData(form) });
    const imp = r.import;
    let text = `已创建任务 ${r.campaign.id}：导入 ${imp.loaded} 个号码，跳过 ${imp.skipped} 个`;
    if (imp.errors.length) text += `；错误行：` + imp.errors.slice(0, 5).map((e) => `第${e.line}行 ${e.error}`).join("，");
    say(text, true);
    selected = r.campaign.id; lastResultsAt = 0; form.reset();
    refresh();
  } catch (e) { say("创建失败：" + e.message, false); }
});

refresh();
setInterval(refresh, 2000);
