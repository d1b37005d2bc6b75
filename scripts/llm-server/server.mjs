// A small OpenAI-compatible server on llama.cpp (node-llama-cpp's prebuilt CPU binary), so the
// tests and a development machine run a real model behind the same `openai` client the IVR
// uses in production (issue 5: the handoff summary and the ticket draft).
//
//   node scripts/llm-server/server.mjs --model FILE.gguf [--host 127.0.0.1] [--port 8081]
//        [--max-tokens 128] [--threads 2] [--ctx 2048]
//
// Endpoints: GET /health, GET /v1/models, POST /v1/chat/completions (non-streaming; messages,
// max_tokens, temperature, seed, response_format json_object or json_schema: the answer is
// then constrained by a JSON grammar, as llama.cpp's own server does). One request is
// generated at a time; others wait in a queue of --queue (beyond: 503). --max-tokens caps every
// answer (like llama-server's --n-predict). A client that goes away aborts its generation.
// Prints one line "listening on http://HOST:PORT" when ready; a JSON log line per request.
import http from "node:http";
import path from "node:path";
import {parseArgs} from "node:util";
import {getLlama, LlamaChatSession} from "node-llama-cpp";

const {values: opts} = parseArgs({options: {
  model: {type: "string"}, host: {type: "string", default: "127.0.0.1"},
  port: {type: "string", default: "8081"}, "max-tokens": {type: "string", default: "128"},
  threads: {type: "string", default: "2"}, ctx: {type: "string", default: "2048"},
  queue: {type: "string", default: "8"}, name: {type: "string"},
}});
if (!opts.model) {
  console.error("usage: server.mjs --model FILE.gguf [--port 8081] [--max-tokens 128]");
  process.exit(2);
}
const MAX_TOKENS = Number(opts["max-tokens"]);
const QUEUE = Number(opts.queue);
const MODEL_ID = opts.name ?? path.basename(opts.model, ".gguf");

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: opts.model});
const context = await model.createContext({contextSize: Number(opts.ctx),
                                            threads: Number(opts.threads)});
const sequence = context.getSequence();
const jsonGrammar = await llama.getGrammarFor("json");

let waiting = 0;
let tail = Promise.resolve();
function serialised(job) {  // one generation at a time, in arrival order
  const run = tail.then(job, job);
  tail = run.then(() => undefined, () => undefined);
  return run;
}

class BadRequest extends Error {}

function history(messages) {
  if (!Array.isArray(messages) || messages.length === 0) throw new BadRequest("messages: a non-empty list");
  const items = [];
  for (const m of messages) {
    if (!m || typeof m.content !== "string" || !["system", "user", "assistant"].includes(m.role)) {
      throw new BadRequest("each message needs a role (system, user, assistant) and text content");
    }
    if (m.role === "system") items.push({type: "system", text: m.content});
    else if (m.role === "user") items.push({type: "user", text: m.content});
    else items.push({type: "model", response: [m.content]});
  }
  const last = items.pop();
  if (last.type !== "user") throw new BadRequest("the last message must be the user's");
  return {items, prompt: last.text};
}

async function grammarFor(format) {
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_object") return jsonGrammar;
  if (format.type === "json_schema" && format.json_schema?.schema) {
    return llama.createGrammarForJsonSchema(format.json_schema.schema);
  }
  throw new BadRequest(`response_format ${JSON.stringify(format.type)} is not supported`);
}

async function complete(body, signal) {
  const {items, prompt} = history(body.messages);
  const grammar = await grammarFor(body.response_format);
  const maxTokens = Math.max(1, Math.min(Number(body.max_tokens ?? MAX_TOKENS), MAX_TOKENS));
  sequence.clearHistory && await sequence.clearHistory();
  const session = new LlamaChatSession({contextSequence: sequence, autoDisposeSequence: false});
  try {
    session.setChatHistory(items);
    const t = Date.now();
    const out = await session.promptWithMeta(prompt, {
      maxTokens, grammar, signal, stopOnAbortSignal: true,
      temperature: typeof body.temperature === "number" ? body.temperature : 0.7,
      seed: typeof body.seed === "number" ? body.seed : undefined,
    });
    const text = out.responseText;
    return {text, finish: out.stopReason === "maxTokens" ? "length" : "stop",
            aborted: out.stopReason === "abort", ms: Date.now() - t,
            promptTokens: model.tokenize(prompt).length, completionTokens: model.tokenize(text).length};
  } finally {
    session.dispose({disposeSequence: false});
  }
}

function send(res, status, obj) {
  if (res.writableEnded || res.destroyed) return;
  const data = JSON.stringify(obj);
  res.writeHead(status, {"content-type": "application/json; charset=utf-8",
                         "content-length": Buffer.byteLength(data)});
  res.end(data);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > 1 << 20) { reject(new BadRequest("body over 1 MiB")); req.destroy(); return; }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://x");
  if (req.method === "GET" && url.pathname === "/health") return send(res, 200, {status: "ok"});
  if (req.method === "GET" && url.pathname === "/v1/models") {
    return send(res, 200, {object: "list", data: [{id: MODEL_ID, object: "model", owned_by: "local"}]});
  }
  if (req.method !== "POST" || url.pathname !== "/v1/chat/completions") {
    return send(res, 404, {error: {message: "not found", type: "invalid_request_error"}});
  }
  if (waiting >= QUEUE) return send(res, 503, {error: {message: "busy", type: "server_error"}});
  const abort = new AbortController();
  res.on("close", () => { if (!res.writableEnded) abort.abort(); });
  waiting += 1;
  try {
    const body = JSON.parse(await readBody(req));
    if (body.stream) throw new BadRequest("stream is not supported");
    const out = await serialised(() => abort.signal.aborted ? null : complete(body, abort.signal));
    if (out === null || out.aborted) {
      console.log(JSON.stringify({event: "aborted"}));
      return;
    }
    console.log(JSON.stringify({event: "completion", ms: out.ms, tokens: out.completionTokens,
                                finish: out.finish}));
    send(res, 200, {
      id: `chatcmpl-${Date.now().toString(36)}`, object: "chat.completion",
      created: Math.floor(Date.now() / 1000), model: MODEL_ID,
      choices: [{index: 0, message: {role: "assistant", content: out.text}, finish_reason: out.finish}],
      usage: {prompt_tokens: out.promptTokens, completion_tokens: out.completionTokens,
              total_tokens: out.promptTokens + out.completionTokens},
    });
  } catch (err) {
    const bad = err instanceof BadRequest || err instanceof SyntaxError;
    if (!bad) console.error(err);
    send(res, bad ? 400 : 500, {error: {message: String(err.message ?? err),
                                        type: bad ? "invalid_request_error" : "server_error"}});
  } finally {
    waiting -= 1;
  }
});
server.listen(Number(opts.port), opts.host, () => {
  const a = server.address();
  console.log(`listening on http://${a.address}:${a.port}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => { server.close(); await llama.dispose(); process.exit(0); });
}
