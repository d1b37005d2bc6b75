// 956100 web chat launcher for other sites: <script src="https://host/chat/embed.js" async>
// adds a round 「在线客服」 button (bottom right) that opens and closes /chat?embed=1 in a
// floating frame (380x600; full screen under 480 px wide, the button then a bar on top).
// Everything comes from the script's own origin; it defines no globals. Chinese strings are
// \u escapes (text in the comments): a host page may be GBK and this file come without charset.
(function () {
  "use strict";

  const script = document.currentScript;
  if (!script || !script.src) return;
  const root = document.documentElement;
  if (root.hasAttribute("data-ivr-chat-embed")) return;  // the script is included twice
  root.setAttribute("data-ivr-chat-embed", "");
  const origin = new URL(script.src, location.href).origin;
  const narrow = window.matchMedia("(max-width: 479px)");
  const Z = "2147483000";
  const TITLE = "\u4e2d\u56fd\u77f3\u6cb9 956100 \u5728\u7ebf\u5ba2\u670d";  // 中国石油 956100 在线客服
  const CLOSE = "\u6536\u8d77\u5728\u7ebf\u5ba2\u670d \u00d7";  // 收起在线客服 ×
  const LABEL = ["\u5728\u7ebf", "\u5ba2\u670d"];  // 在线 / 客服: two lines in the circle
  const button = document.createElement("button");
  let frame = null;
  let open = false;

  function style(node, props) {
    for (const [key, value] of Object.entries(props)) node.style.setProperty(key, value);
  }

  function line(text) {
    const span = document.createElement("span");
    span.textContent = text;
    span.style.display = "block";
    return span;
  }

  function layoutButton() {
    const bar = open && narrow.matches;
    if (bar) button.textContent = CLOSE;
    else button.replaceChildren(...LABEL.map(line));
    style(button, bar ? {
      top: "0", left: "0", right: "0", bottom: "auto", width: "100%", height: "44px",
      "border-radius": "0", "font-size": "15px",
    } : {
      top: "auto", left: "auto", right: "20px", bottom: "20px", width: "64px", height: "64px",
      "border-radius": "50%", "font-size": "14px",
    });
  }

  function layoutFrame() {
    if (!frame) return;
    style(frame, narrow.matches ? {
      top: "44px", left: "0", right: "0", bottom: "auto", width: "100%",
      height: "calc(100% - 44px)",
      "max-height": "none", "border-radius": "0", "box-shadow": "none",
    } : {
      top: "auto", left: "auto", right: "20px", bottom: "96px", width: "380px", height: "600px",
      "max-height": "calc(100vh - 116px)", "border-radius": "12px",
      "box-shadow": "0 8px 30px rgba(0, 0, 0, .25)",
    });
    frame.style.display = open ? "block" : "none";
  }

  function layout() { layoutButton(); layoutFrame(); }

  function makeFrame() {
    frame = document.createElement("iframe");
    frame.src = origin + "/chat?embed=1";
    frame.title = TITLE;
    frame.dataset.ivrChat = "frame";
    style(frame, { position: "fixed", border: "0", background: "#fff", "z-index": Z });
    document.body.appendChild(frame);
  }

  function toggle() {
    open = !open;
    if (open && !frame) makeFrame();  // created on first open, then only hidden: the chat goes on
    button.setAttribute("aria-expanded", String(open));
    layout();
  }

  function mount() {
    button.type = "button";
    button.dataset.ivrChat = "button";
    button.setAttribute("aria-label", TITLE);
    button.setAttribute("aria-expanded", "false");
    style(button, {
      position: "fixed", "z-index": String(Number(Z) + 1), margin: "0", padding: "6px",
      border: "0", background: "#e2231a", color: "#fff", cursor: "pointer", "line-height": "1.3",
      "box-shadow": "0 4px 14px rgba(0, 0, 0, .3)", "font-family": "\"PingFang SC\", "
        + "\"Microsoft YaHei\", sans-serif",
    });
    button.addEventListener("click", toggle);
    if (narrow.addEventListener) narrow.addEventListener("change", layout);
    else narrow.addListener(layout);  // Safari < 14
    document.body.appendChild(button);
    layout();
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
