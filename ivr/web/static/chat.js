// 956100 customer web chat (/chat): talks to /chat/ws, shows the bot's and the agent's
// messages, menu buttons, the digits/PIN field and the rating, and resumes the same chat
// after a reload or a network blip (token + last seq in sessionStorage "ivr-chat").
// Everything is written with textContent (never innerHTML): texts come from customers.
"use strict";

const STORE = "ivr-chat";
const MAX_TEXT = 500;
const ENDED = { completed: "", agent_closed: "由客服结束", customer: "由您结束", expired: "超时",
  no_input: "长时间未操作", error: "系统异常", queue_timeout: "客服繁忙", customer_left: "您已离开",
  closing: "系统维护" };
const $ = (id) => document.getElementById(id);

let ws = null, retry = 500, retryTimer = null, ended = false;
let maxSeq = 0;       // highest seq received in this page life (0 on load: the server replays all)
let pendingEcho = 0;  // own messages shown locally whose `me` copy has not come back yet
let queueLine = null; // the system line with the queue position, updated in place
let typingTimer = null, hintTimer = null;  // agent typing indicator, hint line
let myTyping = false, myTypingAt = 0, myTypingIdle = null;  // what we told the server

function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content != null) e.textContent = String(content);
  return e;
}

// ---- sessionStorage {token, after} (may be unavailable, e.g. in a sandboxed frame) ------
function load() {
  try { return JSON.parse(sessionStorage.getItem(STORE)) || {}; } catch (e) { return {}; }
}
function save(patch) {
  const value = JSON.stringify({ ...load(), ...patch });
  try { sessionStorage.setItem(STORE, value); } catch (e) { /* kept for this page only */ }
}
function forget() { try { sessionStorage.removeItem(STORE); } catch (e) { /* */ } }

// ---- rendering -------------------------------------------------------------------------
function scrollDown() { const s = $("scroll"); s.scrollTop = s.scrollHeight; }

function setStatus(text, cls) { $("status").textContent = text; $("status").className = cls || ""; }

function addMsg(from, text, agent) {
  const kind = ["bot", "agent", "me", "system"].includes(from) ? from : "system";
  const div = el("div", "msg " + kind, text == null ? "" : text);
  if (kind === "bot") div.dataset.name = "智能客服";
  if (kind === "agent") div.dataset.name = agent ? `客服 ${agent}` : "人工客服";
  $("log").appendChild(div);
  scrollDown();
  return div;
}

// A system line; the same text twice in a row (busy retries, too_fast) is shown once.
function system(text) {
  const last = $("log").lastElementChild;
  if (last && last.classList.contains("system") && last.textContent === text) return last;
  return addMsg("system", text);
}

function hint(text) {
  clearTimeout(hintTimer);
  $("hint").textContent = text;
  $("hint").hidden = false;
  hintTimer = setTimeout(() => { $("hint").hidden = true; }, 3000);
}

function echo(text) { pendingEcho += 1; addMsg("me", text); }

function mask(digits) { return digits.length > 4 ? "****" + digits.slice(-4) : digits; }

function showAgentTyping(on) {
  clearTimeout(typingTimer);
  $("typing").hidden = !on;
  if (on) typingTimer = setTimeout(() => { $("typing").hidden = true; }, 6000);
  if (on) scrollDown();
}

function setEntry(entry, maxDigits) {
  const d = $("digits");
  const show = entry === "digits" || entry === "secret";
  d.value = "";
  d.type = entry === "secret" ? "password" : "text";
  d.placeholder = entry === "secret" ? "请输入密码" : "请输入数字";
  if (maxDigits > 0) d.maxLength = maxDigits; else d.removeAttribute("maxlength");
  d.disabled = $("digits-ok").disabled = ended;
  d.hidden = $("digits-ok").hidden = $("entry").hidden = !show;
}

function setInputsDisabled(off) {
  for (const id of ["text", "send", "end", "digits", "digits-ok"]) $(id).disabled = off;
  for (const b of $("buttons").querySelectorAll("button")) b.disabled = off;
}

// Back to an empty page (new chat): log, menu, fields, rating.
function resetView() {
  ended = false;
  [maxSeq, pendingEcho, queueLine] = [0, 0, null];
  for (const id of ["log", "buttons", "rate"]) $(id).replaceChildren();
  $("rate").hidden = $("again").hidden = true;
  setEntry("text", 0);
  showAgentTyping(false);
  setInputsDisabled(false);
}

// ---- server -> customer ----------------------------------------------------------------
function bump(seq) { if (seq > maxSeq) { maxSeq = seq; save({ after: seq }); } }

function onHello(msg) {
  retry = 500;
  setStatus("已连接", "ok");
  if (!msg.resumed && (maxSeq > 0 || $("log").childElementCount)) {
    resetView();  // the old chat is gone: the server started a new one
    system("之前的会话已失效，已为您开始新的会话");
  }
  save({ token: msg.token, after: maxSeq });
}

function onMsg(msg) {
  const seq = Number(msg.seq) || 0;
  if (seq && seq <= maxSeq) return;  // a duplicate (replayed twice)
  bump(seq);
  if (msg.from === "me" && pendingEcho > 0) { pendingEcho -= 1; return; }  // shown already
  if (msg.from === "agent") showAgentTyping(false);
  addMsg(msg.from, msg.text, msg.agent);
}

function onInput(msg) {
  if (msg.seq) bump(Number(msg.seq));
  const box = $("buttons");
  box.replaceChildren();
  for (const b of msg.buttons || []) {
    const btn = el("button", "key", b.label || b.key);
    btn.type = "button";
    btn.dataset.key = b.key;
    btn.disabled = ended;
    box.appendChild(btn);
  }
  setEntry(msg.entry, Number(msg.max_digits) || 0);
  scrollDown();
}

// The bot is done (an agent, or the end): its last menu goes, free text stays.
function noMenu() {
  $("buttons").replaceChildren();
  setEntry("text", 0);
}

function onQueued(msg) {
  noMenu();
  const n = Number(msg.position) || 0;
  const text = n > 0 ? `正在为您转接人工客服，前面还有${n}位` : "正在为您转接人工客服，请稍候";
  if (queueLine && queueLine === $("log").lastElementChild) queueLine.textContent = text;
  else queueLine = system(text);
}

function onRate(msg) {
  const box = $("rate");
  const row = el("div", "scores");
  for (const o of msg.options || []) {
    const b = el("button", null, o.label || o.score);
    b.type = "button";
    b.dataset.score = o.score;
    row.appendChild(b);
  }
  box.replaceChildren(el("p", "question", msg.question || "请您对本次服务进行评价："), row);
  box.hidden = false;
  scrollDown();
}

function onRated() {
  $("rate").replaceChildren(el("p", "thanks", "感谢您的评价！"));
  $("rate").hidden = false;
  scrollDown();
}

// The chat is over: no more input, no reconnect; the rating stays usable.
function finish() {
  typing(false);
  ended = true;
  forget();
  clearTimeout(retryTimer);
  setStatus("已结束", "end");
  setInputsDisabled(true);
  showAgentTyping(false);
  $("again").hidden = false;
}

function onEnded(msg) {
  noMenu();
  const why = ENDED[msg.reason];
  system(why ? `会话已结束（${why}）` : "会话已结束");
  finish();
}

function onError(msg, sock) {
  if (msg.code === "busy") sock.busy = true;  // onclose retries in 5 s
  if (msg.code === "expired") forget();
  // A reload with a stale token (nothing shown yet): onclose just starts a new chat.
  if (msg.code === "expired" && !$("log").childElementCount && !maxSeq) return;
  system(msg.text || (msg.code === "expired" ? "会话已过期" : "出现错误，请稍后重试"));
  if (msg.code === "expired") finish();
}

const HANDLERS = {
  hello: onHello, msg: onMsg, input: onInput, queued: onQueued, rate: onRate, rated: onRated,
  ended: onEnded, error: onError,
  agent_joined: (msg) => {
    queueLine = null;
    noMenu();
    system(`客服 ${msg.agent || ""} 已接入，请问有什么可以帮您？`);
  },
  typing: (msg) => showAgentTyping(!!msg.on),
};

// ---- the socket ------------------------------------------------------------------------
function isOpen() { return ws !== null && ws.readyState === WebSocket.OPEN; }

function send(obj, quiet) {
  if (isOpen()) { ws.send(JSON.stringify(obj)); return true; }
  if (!quiet) hint("网络连接中，请稍后再发送");
  return false;
}

function connect() {
  clearTimeout(retryTimer);
  const q = new URLSearchParams(), token = load().token;
  if (token) q.set("token", token);
  if (token && maxSeq > 0) q.set("after", String(maxSeq));  // a fresh page gets the whole chat
  const proto = location.protocol === "https:" ? "wss:" : "ws:", qs = q.toString();
  const sock = new WebSocket(`${proto}//${location.host}/chat/ws${qs ? "?" + qs : ""}`);
  ws = sock;
  sock.onmessage = (e) => {
    if (ws !== sock) return;
    let msg = null;
    try { msg = JSON.parse(e.data); } catch (err) { /* ignored */ }
    if (msg && HANDLERS[msg.type]) HANDLERS[msg.type](msg, sock);
  };
  sock.onclose = () => {
    if (ws !== sock) return;  // replaced by 「重新咨询」
    [ws, myTyping] = [null, false];
    showAgentTyping(false);
    if (ended) return;
    setStatus("重新连接中", "bad");
    retryTimer = setTimeout(connect, sock.busy ? 5000 : retry);
    if (!sock.busy) retry = Math.min(retry * 2, 5000);
  };
}

// ---- customer -> server ----------------------------------------------------------------
function typing(on) {
  clearTimeout(myTypingIdle);
  if (on === myTyping && (!on || Date.now() - myTypingAt < 2000)) return;
  if (ended || !send({ type: "typing", on }, true)) { myTyping = false; return; }
  [myTyping, myTypingAt] = [on, Date.now()];
}

function autosize() {
  const t = $("text");
  t.style.height = "auto";  // shrink first so scrollHeight is the content's height
  t.style.height = `${Math.min(t.scrollHeight, 120)}px`;
}

function onTextInput() {
  autosize();
  const value = $("text").value;
  if (Array.from(value).length >= MAX_TEXT) hint(`每条消息最多${MAX_TEXT}字`);
  if (!value.trim()) { typing(false); return; }
  typing(true);
  myTypingIdle = setTimeout(() => typing(false), 3000);
}

function sendText() {
  const box = $("text"), text = box.value.trim();
  if (!text || ended) return;
  if (Array.from(text).length > MAX_TEXT) { hint(`每条消息最多${MAX_TEXT}字，请分条发送`); return; }
  if (!send({ type: "text", text })) return;
  box.value = "";
  autosize();
  typing(false);
  echo(text);
}

function sendDigits() {
  const d = $("digits");
  if (ended || d.disabled) return;
  if (!isOpen()) { hint("网络连接中，请稍后再发送"); return; }
  const secret = d.type === "password", digits = d.value.replace(/\D/g, "");
  d.value = "";  // the digits are never kept anywhere
  if (!digits) return;
  send({ type: "digits", digits });
  echo(secret ? "••••••" : mask(digits));
  d.disabled = $("digits-ok").disabled = true;  // until the next `input`
}

function clickKey(e) {
  const btn = e.target.closest("button[data-key]");
  if (!btn || btn.disabled || ended) return;
  if (!send({ type: "key", key: btn.dataset.key })) return;
  echo(btn.textContent);
  for (const b of $("buttons").querySelectorAll("button")) b.disabled = true;
}

function clickScore(e) {
  const btn = e.target.closest("button[data-score]");
  if (!btn || btn.disabled) return;
  if (!send({ type: "rate", score: Number(btn.dataset.score) })) return;
  btn.classList.add("chosen");
  for (const b of $("rate").querySelectorAll("button")) b.disabled = true;
}

function again() {
  const old = ws;
  ws = null;  // its onclose is ignored from now on
  if (old) old.close();
  forget();
  resetView();
  retry = 500;
  setStatus("连接中", "");
  connect();
}

$("text").addEventListener("input", onTextInput);
// Enter sends, Shift+Enter is a new line; Enter that confirms an IME composition is not "send".
const isEnter = (e) => e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229;
const onEnter = (fn) => (e) => { if (isEnter(e)) { e.preventDefault(); fn(); } };
$("text").addEventListener("keydown", onEnter(sendText));
$("send").addEventListener("click", sendText);
$("digits").addEventListener("input", (e) => {
  e.target.value = e.target.value.replace(/\D/g, "");  // digits only
});
$("digits").addEventListener("keydown", onEnter(sendDigits));
$("digits-ok").addEventListener("click", sendDigits);
$("buttons").addEventListener("click", clickKey);
$("rate").addEventListener("click", clickScore);
$("end").addEventListener("click", () => { if (!ended) send({ type: "end" }); });
$("again").addEventListener("click", again);
window.addEventListener("online", () => { if (!ws && !ended) connect(); });

const embedded = new URLSearchParams(location.search).has("embed");
document.documentElement.classList.toggle("embed", embedded);  // /chat?embed=1 in embed.js' frame
connect();
