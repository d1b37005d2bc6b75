// 956100 operations page: "来电分析" (inbound analytics) view and the tab switch between the
// views (campaigns, analytics, prompts). Reads GET /api/ops/analytics; plain DOM and <canvas>;
// no libraries.
// Wrapped in an IIFE so that nothing here clashes with the globals of ops.js (el, api, ...).
"use strict";
(function () {
  const LINES = [["oil", "加油卡", "#1f6feb"], ["gas", "天然气", "#e8590c"], ["general", "综合", "#868e96"]];
  const $ = (id) => document.getElementById(id);
  let loaded = false;   // first query runs when the tab first opens
  let seq = 0;          // ignore answers of superseded queries
  let last = null;      // last answer, redrawn when the tab is shown again

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const kid of kids) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return e;
  }

  // ---- formatting ------------------------------------------------------------------------
  const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("zh-CN"));
  const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%");
  const secs = (v) => (v === null || v === undefined ? "—"
    : Number(v).toLocaleString("zh-CN", { maximumFractionDigits: 1 }) + " 秒");
  const ratio = (a, b) => (b ? a / b : null);

  function localDate(d) {
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  }

  function bar(share, color) {
    const w = Math.max(0, Math.min(100, (share || 0) * 100));
    const i = el("i"); i.style.width = w.toFixed(1) + "%"; if (color) i.style.background = color;
    return el("div", { class: "bar", title: pct(share) }, i);
  }

  // ---- tabs ------------------------------------------------------------------------------
  // Button #tab-<name> shows view VIEWS[name]; the tab is kept in location.hash (#<name>).
  const VIEWS = { campaigns: "campaigns-view", analytics: "analytics", prompts: "prompts-view" };
  const tabOf = (hash) => (Object.hasOwn(VIEWS, hash.slice(1)) ? hash.slice(1) : "campaigns");

  function show(tab) {
    for (const [name, view] of Object.entries(VIEWS)) {
      const on = name === tab, b = $("tab-" + name);
      if ($(view)) $(view).hidden = !on;
      if (b) { b.classList.toggle("on", on); b.setAttribute("aria-selected", String(on)); }
    }
    if (tab !== "analytics") return;
    if (!loaded) { loaded = true; run(); } else if (last) drawCharts(last);
  }

  function choose(tab) {
    const url = location.pathname + location.search + (tab === "campaigns" ? "" : "#" + tab);
    history.replaceState(null, "", url);
    show(tab);
  }

  // ---- query -----------------------------------------------------------------------------
  function query() {
    const q = new URLSearchParams();
    if ($("an-from").value) q.set("from", $("an-from").value);
    if ($("an-to").value) q.set("to", $("an-to").value);
    if ($("an-line").value) q.set("line", $("an-line").value);
    return q.toString();
  }

  function say(text) { $("an-msg").textContent = text; }

  async function run() {
    const q = query(), mine = ++seq;
    $("an-csv").href = "/api/ops/analytics.csv" + (q ? "?" + q : "");
    runUnmatched(q, mine);   // in parallel: grouping by meaning may take longer
    $("an-run").disabled = true; say(""); $("an-took").textContent = "查询中…";
    try {
      const r = await fetch("/api/ops/analytics" + (q ? "?" + q : ""), { credentials: "same-origin" });
      if (mine !== seq) return;
      if (r.status === 401) throw new Error("登录已过期，请刷新页面重新登录");
      const body = await r.json().catch(() => ({}));
      if (mine !== seq) return;
      if (!r.ok) throw new Error(body.error || ("查询失败：HTTP " + r.status));
      last = body; render(body);
      $("an-took").textContent = `查询用时 ${num(Math.round(body.took_ms || 0))} ms`;
    } catch (e) {
      if (mine !== seq) return;
      $("an-took").textContent = "";
      say(e instanceof TypeError ? "查询失败：网络错误" : e.message);
    } finally {
      if (mine === seq) $("an-run").disabled = false;
    }
  }

  // ---- rendering -------------------------------------------------------------------------
  function setCard(id, value, sub) {
    $(id).textContent = value;
    const s = $(id + "-sub"); if (s) s.textContent = sub || "";
  }

  function renderTotals(t) {
    setCard("an-calls", num(t.calls), `完成 ${num(t.completed)} · 其他 ${num(t.other)}`);
    setCard("an-containment", pct(t.containment), "完成 / 来电");
    setCard("an-transferred", num(t.transferred), "占来电 " + pct(ratio(t.transferred, t.calls)));
    setCard("an-hangup", num(t.caller_hangup), "占来电 " + pct(ratio(t.caller_hangup, t.calls)));
    setCard("an-avg", secs(t.avg_ivr_s), "");
    setCard("an-speech", pct(t.speech_share), `语音 ${num(t.speech_turns)} · 按键 ${num(t.key_turns)}`);
  }

  function fill(id, rows, cols, make) {
    const tb = $(id);
    tb.replaceChildren(...rows.map((r) => el("tr", {}, ...make(r).map((c) => el("td", {}, c)))));
    if (!rows.length) tb.append(el("tr", {}, el("td", { colspan: cols, class: "muted" }, "暂无数据")));
  }

  function renderTables(d) {
    fill("an-bots", d.bots || [], 7, (b) => [
      el("span", { title: b.bot }, b.name || b.bot), num(b.calls),
      el("span", { class: "cell" }, bar(b.containment), " " + pct(b.containment)),
      num(b.transferred), num(b.caller_hangup), secs(b.avg_ivr_s),
      b.csat === null || b.csat === undefined ? "—" : `${Number(b.csat).toFixed(2)}（n=${num(b.csat_n)}）`]);
    const reasons = d.reasons || [];
    const rsum = reasons.reduce((s, r) => s + (r.calls || 0), 0);
    fill("an-reasons", reasons, 3, (r) => [
      el("span", { title: r.reason }, r.label || r.reason), num(r.calls),
      el("span", { class: "cell" }, bar(ratio(r.calls, rsum), "#e8590c"), " " + pct(ratio(r.calls, rsum)))]);
    fill("an-states", d.states || [], 5, (s) => [
      el("span", { title: s.state }, s.label || s.state), num(s.turns),
      pct(s.no_match_rate), pct(s.clarify_rate), num(s.no_input)]);
    fill("an-hangups", d.hangups || [], 2, (h) => [el("span", { title: h.at }, h.label || h.at), num(h.calls)]);
    const lineZh = Object.fromEntries(LINES.map(([k, zh]) => [k, zh]));
    fill("an-queues", d.queues || [], 7, (q) => [
      el("span", { title: lineZh[q.line] || q.line || "" }, q.queue), num(q.waits), num(q.answered),
      num(q.abandoned), pct(q.abandon_rate), secs(q.avg_wait_s), secs(q.p90_wait_s)]);
  }

  function render(d) {
    renderTotals(d.totals || {});
    renderTables(d);
    drawCharts(d);
  }

  // ---- charts ----------------------------------------------------------------------------
  function canvas2d(id) {
    const c = $(id), dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 400, h = c.clientHeight || 170;
    c.width = w * dpr; c.height = h * dpr;
    const g = c.getContext("2d"); g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h); g.font = "11px sans-serif"; g.textBaseline = "middle";
    return [g, w, h];
  }

  // Stacked bars: rows of {key: value}, one colour per series; x labels thinned to fit.
  function drawStack(id, labels, rows, series, fmtTitle) {
    const [g, w, h] = canvas2d(id);
    const totals = rows.map((r) => series.reduce((s, [k]) => s + (Number(r[k]) || 0), 0));
    $(id).dataset.points = String(totals.filter((v) => v).length);
    $(id).title = rows.length ? fmtTitle(totals) : "";
    if (!totals.some((v) => v)) {
      g.fillStyle = "#999"; g.textAlign = "center"; g.fillText("暂无数据", w / 2, h / 2); return;
    }
    const max = Math.max(...totals), left = 44, right = w - 8, top = 10, bottom = h - 18;
    const slot = (right - left) / rows.length, bw = Math.max(1, slot * 0.75);
    g.strokeStyle = "#e5e5e5"; g.fillStyle = "#888"; g.textAlign = "right";
    for (const f of [0, 0.5, 1]) {
      const y = bottom - f * (bottom - top);
      g.beginPath(); g.moveTo(left, y); g.lineTo(right, y); g.stroke();
      g.fillText(num(Math.round(max * f)), left - 4, y);
    }
    rows.forEach((r, i) => {
      let y = bottom;
      const x = left + i * slot + (slot - bw) / 2;
      for (const [k, , color] of series) {
        const bh = ((Number(r[k]) || 0) / max) * (bottom - top);
        g.fillStyle = color; g.fillRect(x, y - bh, bw, bh); y -= bh;
      }
    });
    const step = Math.ceil(rows.length / Math.max(1, Math.floor((right - left) / 42)));
    g.fillStyle = "#666"; g.textAlign = "center";
    labels.forEach((lab, i) => { if (i % step === 0) g.fillText(lab, left + (i + 0.5) * slot, h - 8); });
  }

  function drawCharts(d) {
    const days = d.by_day || [], hours = d.by_hour || [];
    const sum = (t) => "合计 " + num(t.reduce((a, b) => a + b, 0));
    drawStack("an-day-chart", days.map((r) => String(r.day).slice(5)), days, LINES, sum);
    drawStack("an-hour-chart", hours.map((r) => String(r.hour)), hours, LINES, sum);
    const conf = d.confidence || [];
    drawStack("an-conf-chart", conf.map((r) => Number(r.from).toFixed(1)),
      conf.map((r) => ({ calls: r.calls })), [["calls", "来电", "#2e7d32"]], sum);
  }

  // ---- what callers said that no bot caught: GET /api/ops/unmatched, same filters ---------
  async function runUnmatched(q, mine) {
    const sum = $("an-unmatched-sum");
    sum.textContent = "查询中…"; sum.classList.remove("err");
    try {
      const r = await fetch("/api/ops/unmatched" + (q ? "?" + q : ""), { credentials: "same-origin" });
      const body = await r.json().catch(() => ({}));
      if (mine !== seq) return;
      if (r.status === 401) throw new Error("登录已过期，请刷新页面重新登录");
      if (!r.ok) throw new Error(body.error || ("查询失败：HTTP " + r.status));
      renderUnmatched(body);
    } catch (e) {
      if (mine !== seq) return;
      $("an-unmatched").replaceChildren();
      sum.classList.add("err");
      sum.textContent = e instanceof TypeError ? "查询失败：网络错误" : e.message;
    }
  }

  function renderUnmatched(d) {
    const clusters = d.clusters || [], bots = d.bots || [];
    const names = Object.fromEntries(bots.map((b) => [b.bot, b.name || b.bot]));
    $("an-unmatched-sum").textContent = clusters.length
      ? `共 ${num(d.texts)} 种说法，出现 ${num(d.said)} 次，归为 ${num(clusters.length)} 组`
        + `（用时 ${num(Math.round(d.took_ms || 0))} ms）`
      : "暂无数据";
    fill("an-unmatched", clusters, 5, (c) => unmatchedRow(c, bots, names));
  }

  // One group: its text, the other texts (small, grey, at most 5), and "add as a similar question".
  function unmatchedRow(c, bots, names) {
    const said = el("div", { class: "said" }, el("div", {}, c.text));
    const others = (c.examples || []).filter((x) => x.text !== c.text).slice(0, 5);
    if (others.length) {
      said.append(el("ul", { class: "examples" }, ...others.map((x) => el("li", {}, `${x.text} ×${num(x.count)}`))));
    }
    const pick = el("select", { class: "bot-pick", "aria-label": "选择机器人" },
      el("option", { value: "" }, "选择机器人…"), ...bots.map((b) => el("option", { value: b.bot }, names[b.bot])));
    const add = el("button", { type: "button", class: "act add-similar", "data-text": c.text }, "加为相似问");
    const note = el("span", { class: "note", role: "status" });
    add.disabled = true;
    pick.addEventListener("change", () => { add.disabled = !pick.value; });
    add.addEventListener("click", () => addSimilar(c.text, pick, add, note, names));
    return [said, num(c.count), num(c.variants), pick, el("span", { class: "cell" }, add, note)];
  }

  async function addSimilar(text, pick, add, note, names) {
    const bot = pick.value;
    if (!bot) return;
    add.disabled = pick.disabled = true;
    note.className = "note"; note.textContent = "提交中…";
    try {
      const r = await fetch(`/api/ops/bots/${encodeURIComponent(bot)}/similar`, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }) });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) throw new Error("登录已过期，请刷新页面重新登录");
      if (!r.ok) throw new Error(body.error || ("提交失败：HTTP " + r.status));
      note.className = "note added";   // done: the button stays disabled
      note.textContent = `已生成 ${names[bot] || bot} 草稿 v${body.version}，待审核发布`;
    } catch (e) {
      note.className = "note err";
      note.textContent = e instanceof TypeError ? "提交失败：网络错误" : e.message;
      add.disabled = pick.disabled = false;
    }
  }

  // ---- wiring ----------------------------------------------------------------------------
  function init() {
    const today = new Date(), from = new Date(today);
    from.setDate(today.getDate() - 6);   // 7 days including today
    $("an-from").value = localDate(from);
    $("an-to").value = localDate(today);
    $("an-csv").href = "/api/ops/analytics.csv?" + query();
    $("an-filters").addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
    for (const name of Object.keys(VIEWS)) {
      if ($("tab-" + name)) $("tab-" + name).addEventListener("click", () => choose(name));
    }
    window.addEventListener("hashchange", () => show(tabOf(location.hash)));
    window.addEventListener("resize", () => { if (last && !$("analytics").hidden) drawCharts(last); });
    show(tabOf(location.hash));
  }

  init();
})();
