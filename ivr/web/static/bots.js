// 956100 bot workspace (/ops/bots): the bots and their versions, an editor (form or YAML) with
// validation as you type, conversation tests, the review steps, publish, rollback and diff.
// Plain DOM; el() and apiCall() come from /agent/common.js. Server data goes in as text only.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const STATE_ZH = { draft: "草稿", tested: "已测试", published: "已发布", retired: "已退役" };
  const ROLE_ZH = { author: "业务人员", lead: "班组长", expert: "业务专家", configurer: "系统配置员",
    ops: "运营", admin: "管理员" };
  const ACTION_ZH = { publish: "发布", rollback: "回滚", seed: "初始导入" };
  // action button id -> the review step it needs in me.steps (run-tests and diff: everyone)
  const STEP_BUTTONS = { submit: "submit", "approve-wording": "wording", "approve-facts": "facts",
    reject: "reject", publish: "publish", rollback: "rollback" };
  const TEMPLATE = `# 新机器人：填写以下必填项，点「保存为草稿」即创建（编号保存后不能修改）
id: new_bot            # 编号：小写字母开头，只含小写字母、数字和下划线
name: 新机器人          # 名称
line: general          # 业务线：oil（加油卡）| gas（燃气）| general（综合）
standard: 标准问法      # 标准问
similar:               # 相似问，每行一条
  - 相似问法一
steps:                 # 对话步骤
  - say: "播报内容。"
  - end: completed
tests:                 # 对话测试，至少一条
  - name: 说出业务，听到播报
    turns:
      - caller: 标准问法
        expect_bot: new_bot
        expect_say: 播报内容
        expect_end: completed
`;

  let me = { user: "", role: "", steps: [] };
  let bots = [];          // GET /api/ops/bots .bots
  let curBot = null;      // the open bot's id
  let detail = null;      // GET /api/ops/bots/{bot}
  let selV = null;        // the selected version number
  let loaded = null;      // {version, data, yaml} in the editor (null: a new bot)
  let yamlHand = false;   // the YAML was edited by hand since the form was built
  let busy = false;       // an action is running
  let checkSeq = 0, formSeq = 0, checkTimer = 0, formTimer = 0, formJob = null;

  const api = (method, path, body) => apiCall("", method, path, body);
  const vpath = () => `/api/ops/bots/${enc(curBot)}/versions/${selV}`;

  function say(text, ok) { const m = $("msg"); m.textContent = text; m.className = ok ? "ok" : "err"; }
  function td(text, cls) { return el("td", cls || "", text == null ? "" : text); }
  function list(items) { const ul = el("ul"); ul.append(...(items || []).map((t) => el("li", "", t))); return ul; }
  function pct(x) { return x == null ? "—" : `${Math.round(x * 1000) / 10}%`; }

  // Review steps carry ISO times; show them like the other times (China time, to the second).
  function when(s) {
    const d = s && String(s).includes("T") ? new Date(s) : null;
    return !d || isNaN(d) ? String(s || "") : d.toLocaleString("sv-SE", { timeZone: "Asia/Shanghai" });
  }

  function testText(s) {
    if (!s) return "未测试";
    return s.seeded ? "初始导入" : `${s.ok ? "通过" : "未通过"} ${s.passed ?? 0}/${s.total ?? 0}`;
  }

  const selected = () => (detail && detail.versions.find((v) => v.version === selV)) || null;

  // ---- the bot list ----------------------------------------------------------------------
  async function loadList() {
    const r = await api("GET", "/api/ops/bots");
    bots = r.bots || []; me = r.me || me;
    $("me").textContent = `${me.user}（${ROLE_ZH[me.role] || me.role}）`;
    renderList(); applyRights();
  }

  function renderList() {
    const tb = $("bot-list").tBodies[0];
    tb.replaceChildren(...bots.map((b) => {
      const tr = el("tr", b.bot === curBot ? "sel" : "");
      tr.dataset.bot = b.bot;
      tr.append(td(b.name), td(b.published != null ? `v${b.published}` : "未发布"),
        td(`v${b.newest} ${STATE_ZH[b.newest_state] || b.newest_state}`), td(b.review_label),
        td(b.calls_7d ?? 0), td(pct(b.containment_7d)));
      tr.title = b.bot;
      tr.addEventListener("click", () => openBot(b.bot));
      return tr;
    }));
    if (!bots.length) { const c = td("还没有机器人", "muted"); c.colSpan = 6; tb.append(el("tr")); tb.lastChild.append(c); }
  }

  // ---- one bot: versions, publications, trail ---------------------------------------------
  async function openBot(id) {
    curBot = id; selV = null; detail = null;
    history.replaceState(null, "", `?bot=${enc(id)}`);
    renderList(); clearOutputs();
    try {
      await loadDetail();
      if (curBot === id && detail && detail.versions.length) await selectVersion(detail.versions[0].version);
    } catch (e) { say(e.message, false); }
  }

  async function loadDetail() {
    if (!curBot) return;
    const id = curBot;
    const d = await api("GET", `/api/ops/bots/${enc(id)}`);
    if (id !== curBot) return;
    detail = d;
    renderDetail();
  }

  function renderDetail() {
    const b = bots.find((x) => x.bot === detail.bot);
    $("bot-title").textContent = `${b ? b.name : detail.bot}（${detail.bot}）· `
      + (detail.in_service != null ? `在线版本 v${detail.in_service}` : "无在线版本");
    if (!detail.versions.some((v) => v.version === selV)) selV = null;
    $("versions").tBodies[0].replaceChildren(...detail.versions.map((v) => {
      const tr = el("tr", v.version === selV ? "sel" : "");
      tr.dataset.version = String(v.version);
      tr.append(td(`v${v.version}`), td(STATE_ZH[v.state] || v.state),
        td(v.review ? v.review.label : "", "review"), td(v.author), td(v.created_at),
        td(testText(v.test_summary)), td(v.note));
      tr.addEventListener("click", () => selectVersion(v.version));
      return tr;
    }));
    $("publications").replaceChildren(...(detail.publications || []).map((p) => el("li", "",
      `${p.at || ""} ${ACTION_ZH[p.action] || p.action} v${p.version}`
      + (p.previous != null ? `（原v${p.previous}）` : "") + (p.author ? ` · ${p.author}` : ""))));
    renderTrail();
    applyRights();
  }

  function renderTrail() {
    const v = selected();
    $("trail").replaceChildren(...(v && v.review ? v.review.steps : []).map((s) => el("li", "",
      [when(s.at), s.label, `${s.actor}（${ROLE_ZH[s.role] || s.role}）`, s.comment]
        .filter(Boolean).join(" · "))));
  }

  function clearDetail() { for (const e of [$("versions").tBodies[0], $("publications"), $("trail")]) e.replaceChildren(); }

  function clearOutputs() { $("diff-out").replaceChildren(); $("test-out").replaceChildren(); }

  async function selectVersion(v) {
    selV = v;
    for (const tr of $("versions").tBodies[0].rows) tr.classList.toggle("sel", tr.dataset.version === String(v));
    renderTrail();
    applyRights();
    clearOutputs();
    const id = curBot;
    try {
      const r = await api("GET", `/api/ops/bots/${enc(id)}/versions/${v}`);
      if (selV === v && curBot === id) loadEditor(r.yaml, r.data, v);
    } catch (e) { say(e.message, false); }
  }

  // Buttons: shown when the role may take the step, enabled when a version is selected.
  function applyRights() {
    for (const [id, step] of Object.entries(STEP_BUTTONS)) $(id).hidden = !(me.steps || []).includes(step);
    const off = busy || !curBot || selV == null;
    for (const b of $("actions").querySelectorAll("button.act")) b.disabled = off;
  }

  // ---- actions on the selected version ----------------------------------------------------
  async function reload() { await loadList(); await loadDetail(); }

  async function act(fn) {
    if (busy || !curBot || selV == null) return;
    busy = true; applyRights();
    let text = null;
    try { text = await fn(); } catch (e) { say(e.message, false); }
    if (text !== null) {
      try { await reload(); } catch (e) { /* the action itself went through */ }
      say(text, true);
    }
    busy = false; applyRights();
  }

  function review(step, label) {
    return () => act(async () => {
      const r = await api("POST", `${vpath()}/review`, { step, comment: $("comment").value.trim() });
      $("comment").value = "";
      return `v${selV}：${label}，当前状态「${r.label}」`;
    });
  }

  async function runTests() {
    const v = selV;
    say("正在运行对话测试…", true);
    $("test-out").replaceChildren(el("p", "muted", "正在运行对话测试…"));
    try {
      const r = await api("POST", `${vpath()}/test`);
      renderTests(r.summary, r.lint);
      const s = r.summary || {};
      return `v${v} 对话测试完成：通过 ${s.passed ?? 0}/${s.total ?? 0}（用时 ${r.took_s ?? "?"} 秒）`;
    } catch (e) { $("test-out").replaceChildren(); throw e; }
  }

  function renderTests(s, lint) {
    s = s || {};
    const out = [el("p", s.ok ? "pass" : "fail", `通过 ${s.passed ?? 0}/${s.total ?? 0} 条对话测试`)];
    for (const p of s.problems || []) out.push(el("p", "fail", p));
    for (const f of s.failures || []) { out.push(el("div", "failure")); out.at(-1).append(el("b", "", f.name), list(f.problems)); }
    if (lint && lint.length) out.push(el("h4", "", "检查提示"), list(lint));
    else out.push(el("p", "pass", "检查无问题"));
    $("test-out").replaceChildren(...out);
  }

  async function showDiff() {
    if (!detail || selV == null) return;
    const pub = detail.versions.find((v) => v.state === "published");
    const a = detail.in_service ?? (pub ? pub.version : null), b = selV, out = $("diff-out");
    if (a == null) { out.textContent = "没有线上版本"; return; }
    if (a === b) { out.textContent = "无差异"; return; }
    try {
      const r = await api("GET", `/api/ops/bots/${enc(curBot)}/diff?a=${a}&b=${b}`);
      if (selV !== b) return;
      renderDiff(r.diff || "");
      say(`线上版本 v${a} 与 v${b} 的差异`, true);
    } catch (e) { say(e.message, false); }
  }

  function renderDiff(text) {
    const out = $("diff-out");
    if (!text.trim()) { out.textContent = "无差异"; return; }
    out.replaceChildren();
    for (const line of text.replace(/\n$/, "").split("\n")) {
      const cls = line.startsWith("@@") ? "hunk"
        : line.startsWith("+") && !line.startsWith("+++") ? "add"
          : line.startsWith("-") && !line.startsWith("---") ? "del" : "";
      out.append(el("span", cls, line), "\n");
    }
  }

  // ---- the editor: YAML and form ----------------------------------------------------------
  function loadEditor(yamlText, data, version) {
    clearTimeout(formTimer); formTimer = 0; formSeq++;
    loaded = { version, data, yaml: yamlText || "" }; yamlHand = false;
    $("yaml").value = yamlText || "";
    buildForm(); runCheck();
  }

  function showCheck(r) {
    const box = $("check");
    if (!r) { box.className = ""; box.replaceChildren(); return; }
    if (r.ok) {
      box.className = "ok";
      box.replaceChildren(el("div", "", "格式正确"),
        ...(r.lint || []).map((p) => el("div", "lint", `检查提示：${p}`)));
    } else {
      box.className = "err";
      box.replaceChildren(...(r.errors || []).map((e) =>
        el("div", "", e.line != null ? `第${e.line}行：${e.message}` : e.message)));
    }
  }

  async function runCheck() {
    clearTimeout(checkTimer); checkTimer = 0;
    const seq = ++checkSeq, text = $("yaml").value;
    if (!text.trim()) { showCheck(null); return; }
    try {
      const r = await api("POST", "/api/ops/bots/check", { yaml: text });
      if (seq === checkSeq) showCheck(r);
    } catch (e) {
      if (seq === checkSeq) showCheck({ ok: false, errors: [{ line: null, message: e.message }] });
    }
  }

  function control(tag, value, attrs) {
    const e = el(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    e.value = value == null ? "" : String(value);
    return e;
  }

  function field(label, ...controls) {
    const row = el("div", "field");
    const box = controls.length > 1 ? el("div", "pair") : null;
    if (box) box.append(...controls);
    row.append(el("span", "", label), box || controls[0]);
    return row;
  }

  const isObj = (x) => x != null && typeof x === "object" && !Array.isArray(x);

  function buildForm() {
    const box = $("form");
    const d = loaded && loaded.data;
    if (!isObj(d)) {
      box.replaceChildren(el("p", "muted", loaded ? "该版本的 YAML 无法用表单编辑，请在 YAML 中修改"
        : "新建机器人请在 YAML 中填写，保存后即可用表单编辑"));
      return;
    }
    const lines = (x) => (Array.isArray(x) ? x.join("\n") : "");
    const kids = [el("p", "note", "YAML 已手动修改，表单以保存后的版本为准"),
      field("名称", control("input", d.name, { id: "f-name" })),
      field("标准问", control("input", d.standard, { id: "f-standard" })),
      field("相似问（每行一条）", control("textarea", lines(d.similar), { id: "f-similar", rows: 6 })),
      field("规则（每行一条）", control("textarea", lines(d.rules), { id: "f-rules", rows: 3 }))];
    for (const [name, slot] of Object.entries(isObj(d.slots) ? d.slots : {})) {
      if (!isObj(slot)) continue;
      kids.push(field(`槽位 ${name}` + (slot.type ? `（${slot.type}）` : ""),
        control("input", slot.prompt, { "data-slot": name, "data-field": "prompt", placeholder: "提问" }),
        control("input", slot.reprompt, { "data-slot": name, "data-field": "reprompt",
          placeholder: "重问（可不填）" })));
    }
    (Array.isArray(d.steps) ? d.steps : []).forEach((s, i) => {
      if (!isObj(s)) return;
      for (const [f, zh] of [["say", "播报"], ["confirm", "确认"]]) {
        if (typeof s[f] === "string") kids.push(field(`步骤 ${i + 1}（${zh}）`,
          control("textarea", s[f], { "data-step": i, "data-field": f, rows: 2 })));
      }
    });
    box.replaceChildren(...kids);
    syncFormLock();
  }

  function syncFormLock() {
    const note = $("form").querySelector(".note");
    if (note) note.hidden = !yamlHand;
    for (const c of $("form").querySelectorAll("input, textarea")) c.disabled = yamlHand;
  }

  // The loaded data with the form's fields put in; every other key is kept as it was.
  function formData() {
    const d = JSON.parse(JSON.stringify(loaded.data));
    const split = (id) => $(id).value.split("\n").map((s) => s.trim()).filter(Boolean);
    d.name = $("f-name").value.trim();
    d.standard = $("f-standard").value.trim();
    for (const [key, id] of [["similar", "f-similar"], ["rules", "f-rules"]]) {
      const items = split(id);
      if (items.length || key in d) d[key] = items;
    }
    for (const c of $("form").querySelectorAll("[data-slot]")) {
      const slot = d.slots[c.dataset.slot], value = c.value.trim();
      if (c.dataset.field === "reprompt" && !value) delete slot.reprompt;
      else slot[c.dataset.field] = value;
    }
    for (const c of $("form").querySelectorAll("[data-step]")) {
      d.steps[Number(c.dataset.step)][c.dataset.field] = c.value.trim();
    }
    return d;
  }

  function formToYaml() {
    clearTimeout(formTimer); formTimer = 0;
    if (!loaded || !isObj(loaded.data) || yamlHand) return Promise.resolve();
    const seq = ++formSeq;
    formJob = (async () => {
      try {
        // base: the version's own text, so only the changed fields are rewritten
        const r = await api("POST", "/api/ops/bots/yaml", { data: formData(), base: loaded.yaml });
        if (seq !== formSeq || yamlHand) return;
        $("yaml").value = r.yaml || "";
        if (r.ok) await runCheck();
        else { checkSeq++; showCheck({ ok: false, errors: r.errors }); }
      } catch (e) {
        if (seq === formSeq) { checkSeq++; showCheck({ ok: false, errors: [{ line: null, message: e.message }] }); }
      }
    })();
    return formJob;
  }

  function showTab(which) {
    const form = which === "form";
    for (const [id, on] of [["tab-form", form], ["tab-yaml", !form]]) {
      $(id).classList.toggle("on", on);
      $(id).setAttribute("aria-selected", String(on));
    }
    $("form").hidden = !form; $("yaml-pane").hidden = form;
    if (form) syncFormLock();
  }

  function newBot() {
    curBot = null; detail = null; selV = null; loaded = null; yamlHand = false;
    clearTimeout(formTimer); formTimer = 0; formSeq++;
    history.replaceState(null, "", location.pathname);
    renderList(); clearDetail(); clearOutputs(); applyRights();
    $("bot-title").textContent = "新建机器人";
    $("yaml").value = TEMPLATE;
    $("note").value = "";
    buildForm(); showTab("yaml"); runCheck();
    say("请在 YAML 中填写新机器人，保存为草稿即创建", true);
    $("yaml").focus();
  }

  // POST drafts by hand: its 400 carries the schema errors next to the message.
  async function postDraft(body) {
    const r = await fetch("/api/ops/bots/drafts", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const err = new Error(data.error || `请求失败（${r.status}）`);
      err.errors = Array.isArray(data.errors) ? data.errors : null;
      throw err;
    }
    return data;
  }

  async function save() {
    if (busy) return;
    busy = true; $("save").disabled = true; applyRights();
    try {
      if (formTimer) await formToYaml(); else if (formJob) await formJob;
      const text = $("yaml").value;
      if (!text.trim()) throw new Error("YAML 为空，无法保存");
      const r = await postDraft({ yaml: text, note: $("note").value.trim() });
      $("note").value = "";
      curBot = r.bot;
      history.replaceState(null, "", `?bot=${enc(r.bot)}`);
      try { await reload(); } catch (e) { /* the draft is saved */ }
      busy = false;
      await selectVersion(r.version);
      say(r.created ? `已保存为草稿 v${r.version}` : `内容未变化（v${r.version}）`, true);
    } catch (e) {
      if (e.errors && e.errors.length) { checkSeq++; showCheck({ ok: false, errors: e.errors }); }
      say(e.message, false);
    } finally { busy = false; $("save").disabled = false; applyRights(); }
  }

  // ---- wiring ------------------------------------------------------------------------------
  function init() {
    $("new-bot").addEventListener("click", newBot);
    $("run-tests").addEventListener("click", () => act(runTests));
    $("submit").addEventListener("click", review("submit", "已提交审核"));
    $("approve-wording").addEventListener("click", review("wording", "话术审核通过"));
    $("approve-facts").addEventListener("click", review("facts", "业务审核通过"));
    $("reject").addEventListener("click", review("reject", "已退回修改"));
    $("publish").addEventListener("click", () => act(async () => {
      const r = await api("POST", `${vpath()}/publish`);
      return `已发布 v${r.version}，新来电即使用该版本`;
    }));
    $("rollback").addEventListener("click", () => act(async () => {
      const r = await api("POST", `/api/ops/bots/${enc(curBot)}/rollback`, { to: selV });
      return `已回滚到 v${r.version}，新来电即使用该版本`;
    }));
    $("diff").addEventListener("click", showDiff);
    $("tab-form").addEventListener("click", () => showTab("form"));
    $("tab-yaml").addEventListener("click", () => showTab("yaml"));
    $("yaml").addEventListener("input", () => {
      if (!yamlHand) { yamlHand = true; clearTimeout(formTimer); formTimer = 0; formSeq++; syncFormLock(); }
      clearTimeout(checkTimer);
      checkTimer = setTimeout(runCheck, 400);
    });
    $("form").addEventListener("input", () => {
      if (yamlHand) return;
      clearTimeout(formTimer);
      formTimer = setTimeout(formToYaml, 400);
    });
    $("save").addEventListener("click", save);
    applyRights();
    showTab("form");
    loadList().then(() => {
      const id = new URLSearchParams(location.search).get("bot");
      if (id) openBot(id);
    }).catch((e) => say(e.message, false));
  }

  init();
})();
