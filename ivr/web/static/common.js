// Helpers shared by the agent desktop (agent.js) and the reviewers' page (review.js).
"use strict";

function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content != null) e.textContent = String(content);
  return e;
}

// JSON request to base + path; throws an Error with the server's Chinese message on failure.
async function apiCall(base, method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(base + path, init);
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  if (!r.ok) throw new Error(data.error || `请求失败（${r.status}）`);
  return data;
}
