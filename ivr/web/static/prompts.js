// 956100 operations page: "提示音试听" (prompt audio preview) view. Lists the published bots'
// fixed prompts (GET /api/ops/prompts) and plays any text, as listed or reworded, through the
// configured TTS and the server's prompt cache (GET /api/ops/prompts/preview). The tab switch
// itself lives in analytics.js; this script loads its list the first time its view is shown.
// Wrapped in an IIFE so that nothing here clashes with the globals of ops.js (el, api, ...).
"use strict";
(function () {
  const MAX_CHARS = 300;   // as ivr/web/prompts.py MAX_CHARS
  const MAX_SHOWN = 300;   // list items rendered at once; the filter narrows the rest
  const $ = (id) => document.getElementById(id);
  let loading = false, loaded = false;
  let prompts = [];        // [{id, text}] as the server lists them
  let chosen = null;       // the prompt last picked from the list
  let playing = "";        // the preview URL last given to the <audio>, to read its error

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function say(text, cls) { $("pr-msg").textContent = text; $("pr-msg").className = cls || ""; }

  // ---- the list --------------------------------------------------------------------------
  async function load() {
    if (loading || loaded) return;
    loading = true; say("加载中…");
    try {
      const r = await fetch("/api/ops/prompts", { credentials: "same-origin" });
      if (r.status === 401) throw new Error("登录已过期，请刷新页面重新登录");
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(body.error || ("加载失败：HTTP " + r.status));
      prompts = (body.prompts || []).filter((p) => p && typeof p.text === "string" && p.text);
      loaded = true; say(""); render();
    } catch (e) {   // not loaded: tried again the next time the view is shown
      say(e instanceof TypeError ? "加载失败：网络错误" : e.message, "err");
    } finally {
      loading = false;
    }
  }

  function render() {
    const q = $("pr-filter").value.trim().toLowerCase();
    const hits = prompts.filter((p) => !q || p.text.toLowerCase().includes(q)
      || (p.id || "").toLowerCase().includes(q));
    const list = $("pr-list");
    list.replaceChildren(...hits.slice(0, MAX_SHOWN).map(item));
    if (!hits.length) list.append(el("li", "muted", prompts.length ? "没有匹配的提示音" : "暂无提示音"));
    if (hits.length > MAX_SHOWN) list.append(el("li", "muted", `仅显示前 ${MAX_SHOWN} 条，请输入关键词缩小范围`));
    $("pr-count").textContent = q ? `${hits.length} / ${prompts.length}` : `共 ${prompts.length} 条`;
  }

  function item(p) {
    const li = el("li", p === chosen ? "sel" : "");
    const b = el("button");
    b.type = "button";
    if (p.id) b.append(el("span", "pid", p.id));
    b.append(el("span", "", p.text));
    b.addEventListener("click", () => pick(p, li));
    li.append(b);
    return li;
  }

  function pick(p, li) {
    chosen = p;
    for (const x of $("pr-list").querySelectorAll("li.sel")) x.classList.remove("sel");
    li.classList.add("sel");
    $("pr-text").value = p.text;
    update();
  }

  // ---- the text and the player -----------------------------------------------------------
  // The chosen prompt's id goes along only while its text is unchanged (a recording wins then).
  const sameAsChosen = () => !!(chosen && chosen.id && $("pr-text").value === chosen.text);

  function update() {
    const text = $("pr-text").value;
    $("pr-play").disabled = !text.trim();
    $("pr-len").textContent = `${text.length}/${MAX_CHARS}`;
    $("pr-which").textContent = sameAsChosen() ? `提示音 ${chosen.id}：有录音时播放录音`
      : chosen && chosen.id ? "文字已修改：按新文字合成" : "";
  }

  function previewUrl() {
    const q = new URLSearchParams({ text: $("pr-text").value });
    if (sameAsChosen()) q.set("id", chosen.id);
    return "/api/ops/prompts/preview?" + q.toString();
  }

  function play() {
    if (!$("pr-text").value.trim()) return;
    const audio = $("pr-audio");
    playing = previewUrl();
    audio.src = playing;   // (re)loads even when the URL is the same
    const p = audio.play();   // failures arrive as the 'error' event
    if (p) p.catch(() => {});
  }

  // The <audio> cannot read an error body: fetch the same URL to show the server's {"error"}.
  async function failed() {
    const url = playing;
    if (!url) return;
    let text;
    try {
      const r = await fetch(url, { credentials: "same-origin" });
      const json = (r.headers.get("Content-Type") || "").includes("json");
      const body = json ? await r.json().catch(() => ({})) : {};
      if (!json && r.body) r.body.cancel().catch(() => {});
      text = r.status === 401 ? "登录已过期，请刷新页面重新登录"
        : body.error || (r.ok ? "浏览器无法播放这段音频" : "试听失败：HTTP " + r.status);
    } catch (e) {
      text = "试听失败：网络错误";
    }
    if (url === playing) say(text, "err");
  }

  // ---- wiring ----------------------------------------------------------------------------
  function init() {
    const audio = $("pr-audio"), view = $("prompts-view");
    $("pr-filter").addEventListener("input", () => { if (loaded) render(); });
    $("pr-text").addEventListener("input", update);
    $("pr-play").addEventListener("click", play);
    audio.addEventListener("loadstart", () => { if (audio.getAttribute("src")) say("合成中…"); });
    audio.addEventListener("canplay", () => say(""));
    audio.addEventListener("error", failed);
    // Load on first show, pause when hidden, whoever switches the view (analytics.js does).
    const shown = () => { if (!view.hidden) load(); else if (!audio.paused) audio.pause(); };
    new MutationObserver(shown).observe(view, { attributes: true, attributeFilter: ["hidden"] });
    update(); shown();
  }

  init();
})();
