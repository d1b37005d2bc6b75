// Live web chat on the agent desktop (/agent/chat/ws): the 「接收在线会话」 toggle, chat offers,
// the conversation with the customer, typing hints and closing. Protocol: issue 21.
// Everything is written with textContent (never innerHTML): chat texts come from customers.
"use strict";
(() => {
  const LINES = { oil: "加油卡", gas: "天然气", general: "综合", priority: "紧急" };
  const WHO = { customer: "客户", bot: "机器人", agent: "我", system: "系统" };
  const ENDED = { customer: "客户已结束会话", customer_left: "客户已离开", agent_closed: "您已结束会话" };
  const TYPING_EVERY = 2000; // at most one typing:on per this many ms
  const TYPING_HIDE = 6000; // the customer's typing hint hides after this
  const MAX_TEXT = 1000;
  const $ = (id) => document.getElementById(id);
  let ws = null;
  let retry = 500;
  let touched = false; // the agent changed the ready toggle on this page
  let chat = null; // {id, phase: "offered"|"active"|"ended", line, since}
  let seen = new Set(); // seqs in the log of this chat
  let typingHide = null;
  let typingSent = 0; // when we last sent typing:on
  let typingOn = false;
  let typingStop = null;
  let ticker = null;

  function send(msg) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  function setStatus(textValue) { $("chat-status").textContent = textValue; }

  function editable(on) {
    for (const id of ["chat-text", "chat-send", "chat-close"]) $(id).disabled = !on;
  }

  function showTyping(on) {
    clearTimeout(typingHide);
    $("chat-typing").hidden = !on;
    if (on) typingHide = setTimeout(() => { $("chat-typing").hidden = true; }, TYPING_HIDE);
  }

  // ---- the log ---------------------------------------------------------------------------
  function line(from, textValue) {
    const kind = from in WHO ? from : "system";
    const div = el("div", `msg ${kind}`);
    div.append(el("span", "who", WHO[kind]), el("span", "text", textValue == null ? "" : textValue));
    const log = $("chat-log");
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.appendChild(div);
    if (stick || kind === "agent") log.scrollTop = log.scrollHeight;
  }

  function message(m) {
    if (m.seq != null) {
      if (seen.has(m.seq)) return; // replayed after a reconnect
      seen.add(m.seq);
    }
    line(m.from, m.text);
  }

  function system(textValue) {
    $("chat-pane").hidden = false;
    line("system", textValue);
  }

  // ---- chat states -----------------------------------------------------------------------
  function offerStatus() {
    if (!chat || chat.phase !== "offered") return;
    const waited = Math.max(0, Math.round((Date.now() - chat.since) / 1000));
    setStatus(`新会话等待接入（业务线：${LINES[chat.line] || chat.line || "—"}，已等待${waited}秒）`);
  }

  function offer(m) {
    chat = { id: m.chat, phase: "offered", line: m.line, since: Date.now() - (m.waiting_s || 0) * 1000 };
    seen = new Set();
    $("chat-log").replaceChildren();
    $("chat-text").value = "";
    showTyping(false);
    editable(false);
    $("chat-accept").hidden = false;
    $("chat-accept").disabled = false;
    $("chat-pane").hidden = false;
    offerStatus();
    clearInterval(ticker);
    ticker = setInterval(offerStatus, 1000);
  }

  function active(id) {
    if (!chat || chat.id !== id) chat = { id, line: null, since: Date.now() };
    if (chat.phase === "active") return;
    chat.phase = "active";
    clearInterval(ticker);
    $("chat-accept").hidden = true;
    $("chat-pane").hidden = false;
    editable(true);
    setStatus("会话中");
    $("chat-text").focus();
  }

  function ended(m) {
    if (!chat || chat.id !== m.chat) return;
    chat.phase = "ended";
    clearInterval(ticker);
    stopTyping(false);
    showTyping(false);
    $("chat-accept").hidden = true;
    editable(false);
    const why = ENDED[m.reason] || m.reason;
    setStatus(why ? `会话已结束（${why}）` : "会话已结束");
  }

  function withdrawn(m) {
    if (!chat || chat.id !== m.chat || chat.phase !== "offered") return;
    clearInterval(ticker);
    chat = null;
    $("chat-accept").hidden = true;
    $("chat-pane").hidden = true;
  }

  // state on (re)connect: chat info is {chat|id, state|phase: "offered"|..., line, waiting_s}
  function restore(m) {
    if (!touched) $("chat-ready").checked = !!m.ready;
    else if ($("chat-ready").checked !== !!m.ready) send({ type: "ready", on: $("chat-ready").checked });
    const info = m.chat;
    if (!info) {
      if (chat && chat.phase === "offered") withdrawn({ chat: chat.id });
      else if (chat && chat.phase === "active") ended({ chat: chat.id, reason: null });
      return;
    }
    const id = info.chat || info.id;
    const phase = info.state || info.phase;
    if (phase === "offered") {
      if (!chat || chat.id !== id || chat.phase !== "offered") offer({ ...info, chat: id });
    } else if (phase === "ended" || phase === "closed") {
      ended({ chat: id, reason: info.reason });
    } else {
      if (!chat || chat.id !== id) { seen = new Set(); $("chat-log").replaceChildren(); }
      active(id);
    }
  }

  function receive(m) {
    const mine = chat && m.chat === chat.id;
    switch (m.type) {
      case "state": restore(m); break;
      case "offer": offer(m); break;
      case "history":
        if (!chat || m.chat !== chat.id) break;
        seen = new Set();
        $("chat-log").replaceChildren();
        for (const x of m.messages || []) message(x);
        if (chat.phase !== "ended") active(m.chat);
        $("chat-log").scrollTop = $("chat-log").scrollHeight;
        break;
      case "msg":
        if (!mine) break;
        if (chat.phase === "offered") active(m.chat);
        message(m);
        if (m.from === "customer") showTyping(false);
        break;
      case "typing": if (mine && chat.phase === "active") showTyping(!!m.on); break;
      case "ended": ended(m); break;
      case "withdrawn": withdrawn(m); break;
      case "error": system(m.text || "操作失败"); break;
    }
  }

  // ---- the agent's actions -----------------------------------------------------------------
  function stopTyping(tell = true) {
    clearTimeout(typingStop);
    if (tell && typingOn && chat) send({ type: "typing", chat: chat.id, on: false });
    typingOn = false;
    typingSent = 0;
  }

  function typed() {
    if (!chat || chat.phase !== "active") return;
    const now = Date.now();
    if (now - typingSent >= TYPING_EVERY && $("chat-text").value.trim()) {
      if (send({ type: "typing", chat: chat.id, on: true })) { typingSent = now; typingOn = true; }
    }
    clearTimeout(typingStop);
    typingStop = setTimeout(() => stopTyping(), TYPING_EVERY);
  }

  function sendText() {
    if (!chat || chat.phase !== "active") return;
    const value = $("chat-text").value.trim();
    if (!value) return;
    if (value.length > MAX_TEXT) { system(`消息过长（最多${MAX_TEXT}字）`); return; }
    stopTyping();
    // no local echo: the server sends the message back as from "agent"
    if (send({ type: "send", chat: chat.id, text: value })) $("chat-text").value = "";
    else system("连接已断开，消息未发送，请稍后重试");
  }

  function accept() {
    if (!chat || chat.phase !== "offered") return;
    if (!send({ type: "accept", chat: chat.id })) { system("连接已断开，请稍后重试"); return; }
    $("chat-accept").hidden = true;
    clearInterval(ticker);
    setStatus("正在接入……");
  }

  function closeChat() {
    if (!chat || chat.phase !== "active") return;
    if (!send({ type: "close", chat: chat.id })) system("连接已断开，请稍后重试");
  }

  // ---- the websocket ---------------------------------------------------------------------
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/agent/chat/ws`);
    ws.onopen = () => {
      retry = 500;
      $("chat-ready-label").classList.remove("bad");
      $("chat-ready-label").title = "";
    };
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m && typeof m === "object") receive(m);
    };
    ws.onclose = () => {
      $("chat-ready-label").classList.add("bad");
      $("chat-ready-label").title = "在线会话连接已断开，重连中";
      typingOn = false;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  $("chat-ready").addEventListener("change", () => {
    touched = true;
    send({ type: "ready", on: $("chat-ready").checked }); // re-sent after the next state if lost
  });
  $("chat-accept").addEventListener("click", accept);
  $("chat-send").addEventListener("click", sendText);
  $("chat-close").addEventListener("click", closeChat);
  $("chat-text").addEventListener("input", typed);
  $("chat-text").addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    sendText();
  });
  connect();
})();
