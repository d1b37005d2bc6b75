// 956100 knowledge inbox (审核): a reviewer approves or rejects agents' proposals with a reason.
// Everything is written with textContent (never innerHTML).
"use strict";

const API = "/agent/api/kb";
const LINES = { oil: "加油卡", gas: "天然气", general: "综合" };
const $ = (id) => document.getElementById(id);

const api = (method, path, body) => apiCall(API, method, path, body);  // common.js

function card(item) {
  const s = el("section", "card");
  s.dataset.id = item.id;
  s.append(el("div", "title", `${item.title}（${LINES[item.line] || item.line} · ${item.entry_id} 第${item.version}版）`),
    el("div", "why", `提交人 ${item.author || "—"} · ${(item.created_at || "").slice(0, 16).replace("T", " ")}${item.note ? " · 说明：" + item.note : ""}`),
    el("div", "body", item.body));
  if (item.current) {
    s.append(el("div", "why", `当前生效版本（第${item.current.version}版）：`),
      el("div", "old", item.current.body));
  }
  const actions = el("div", "actions");
  const reason = el("input");
  reason.placeholder = "审核意见（驳回必填）";
  reason.maxLength = 500;
  const decide = (verb, label, cls) => {
    const b = el("button", cls, label);
    b.type = "button";
    b.onclick = async () => {
      try {
        await api("POST", `/proposals/${item.id}/${verb}`, { reason: reason.value });
        $("notice").className = "result ok";
        $("notice").textContent = `「${item.title}」已${label}`;
        s.remove();
        $("count").textContent = `${document.querySelectorAll("#items .card").length} 条`;
      } catch (e) {
        $("notice").className = "result err";
        $("notice").textContent = e.message;
      }
    };
    return b;
  };
  actions.append(reason, decide("approve", "通过", "approve"), decide("reject", "驳回", "reject"));
  s.appendChild(actions);
  return s;
}

async function load() {
  try {
    const d = await api("GET", "/inbox");
    const box = $("items");
    box.replaceChildren(...d.items.map(card));
    $("count").textContent = `${d.items.length} 条`;
    if (!d.items.length) box.appendChild(el("section", "muted", "没有待审核的知识"));
  } catch (e) {
    $("notice").className = "result err";
    $("notice").textContent = e.message;
  }
}

fetch("/agent/me", { credentials: "same-origin" })
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error("login"))))
  .then((me) => { $("agent").textContent = me.agent; load(); })
  .catch(() => { location.href = "/agent"; });
