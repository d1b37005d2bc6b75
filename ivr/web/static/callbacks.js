// Callback tasks (回电任务) on the agent desktop: list, claim, dial (the agent's phone rings,
// then the customer), close with an outcome. API: ivr/web/callbacks.py.
"use strict";
(() => {
  const API = "/agent/api/callbacks";
  const LINES = { oil: "加油卡", gas: "天然气", general: "综合" };
  const CLOSE = [["done", "已回电"], ["failed", "未能联系"], ["cancelled", "无需回电"]];
  const $ = (id) => document.getElementById(id);
  let me = null;

  function say(msg, ok) {
    const r = $("cb-result");
    r.textContent = msg;
    r.className = "result " + (ok ? "ok" : "err");
  }

  function when(iso) {
    const d = new Date(iso);
    return `${d.getMonth() + 1}-${d.getDate()} ${String(d.getHours()).padStart(2, "0")}:` +
      String(d.getMinutes()).padStart(2, "0");
  }

  function button(label, action) {
    const b = el("button", null, label);
    b.type = "button";
    b.addEventListener("click", action);
    return b;
  }

  async function act(task, path, body, done) {
    try {
      const r = await apiCall(API, "POST", `/${task.id}/${path}`, body);
      say(done(r.task), true);
    } catch (e) {
      say(e.message, false);
    }
    await load();
  }

  function row(task) {
    const tr = el("tr");
    tr.dataset.task = task.id;
    const mine = task.agent === me;
    [task.caller_number, LINES[task.line] || task.line, task.reason_text, when(task.requested_at),
     task.agent ? (mine ? "我" : task.agent) : "—", task.dials].forEach((v) => tr.append(el("td", null, v)));
    const ops = el("td");
    if (!task.agent || mine) {
      if (!mine) ops.append(button("认领", () => act(task, "claim", undefined, () => "已认领")));
      ops.append(button("回拨", () => act(task, "dial", undefined,
        () => `正在呼叫您的话机，接听后将拨打 ${task.caller_number}`)));
    }
    if (mine) {
      for (const [status, label] of CLOSE) {
        ops.append(button(label, () => act(task, "close",
          { status, note: prompt(`备注（${label}）`, "") || "" }, () => `任务已关闭：${label}`)));
      }
    }
    tr.append(ops);
    return tr;
  }

  async function load() {
    try {
      if (me === null) me = (await apiCall("/agent", "GET", "/me")).agent;
      const { tasks } = await apiCall(API, "GET", "");
      $("cb-count").textContent = String(tasks.length);
      const body = $("cb-rows");
      body.replaceChildren(...tasks.map(row));
      if (!tasks.length) {
        const td = el("td", "muted", "暂无待回电任务");
        td.colSpan = 7;
        const tr = el("tr");
        tr.append(td);
        body.append(tr);
      }
    } catch (e) {
      say(e.message, false);
    }
  }

  $("cb-toggle").addEventListener("click", () => {
    $("cb-panel").hidden = !$("cb-panel").hidden;
    if (!$("cb-panel").hidden) load();
  });
  load();
  setInterval(load, 30000);
})();
