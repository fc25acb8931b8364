#!/usr/bin/env node
/*
 * atoma-conformance client adapter for the official TypeScript SDK
 * ("atoma-sdk" 0.1.1 from npm). Client adapter contract version 1.
 *
 * Why it exists: the conformance suite drives real, unmodified client SDKs
 * against a node (or the mock node) to record which server behaviours each
 * SDK accepts or rejects. This file is the thin bridge between the suite's
 * language-neutral contract and the npm SDK's confidential-compute methods.
 * It adds no crypto and no checks of its own: whatever the SDK accepts is
 * reported "ok", whatever it throws is reported "error".
 *
 * Install and run (never inside the repository tree):
 *   cp package.json package-lock.json adapter.cjs <cache dir>/
 *   npm ci --prefix <cache dir>          # builds the native blake2 dependency (node-gyp)
 *   node <cache dir>/adapter.cjs < instruction.json
 * or, with the adapter left here, point Node at the installed packages:
 *   NODE_PATH=<cache dir>/node_modules node adapter.cjs < instruction.json
 * "atoma-sdk" is loaded with a plain require(), so it resolves from this
 * file's directory first and from NODE_PATH after that.
 *
 * Contract 1.
 * stdin, one JSON object:
 *   {"contract": 1, "base_url": "http://host:port", "api_key": "...", "model": "...",
 *    "operation": "chat" | "chat-stream" | "completions" | "embeddings" | "images",
 *    "params": {...}, "node_address": "0x..." | null, "timeout_s": 30}
 *   params: chat, chat-stream: {"messages": [...], "max_tokens": n}
 *           completions: {"prompt": "...", "max_tokens": n}
 *           embeddings: {"input": "..." | [...]}
 *           images: {"prompt": "...", "n": 1, "size": "256x256"}
 * stdout, exactly one line:
 *   {"outcome": "ok" | "error", "content": string | null, "error_code": string | null,
 *    "detail": string | null, "client": "atoma-sdk 0.1.1 (npm)"}
 * The exit status is 0 whenever a result was printed.
 *
 * SDK methods used:
 *   chat         -> sdk.confidentialChat.create(request, { timeoutMs })
 *   chat-stream  -> sdk.confidentialChat.createStream(request, { timeoutMs }), then for-await
 *   embeddings   -> sdk.confidentialEmbeddings.create(request, { timeoutMs })
 *   images       -> sdk.confidentialImages.generate(request, { timeoutMs })
 *   completions  -> UNSUPPORTED_OPERATION (0.1.1 has no confidential completions method)
 * node_address is accepted but unused: the SDK picks its node through
 * POST /v1/nodes/lock and has no way to pin or check a node address.
 * error_code is the thrown error's name (APIError, SDKValidationError, ZodError,
 * Error, ...), or one of the adapter's own: BAD_INSTRUCTION, UNSUPPORTED_OPERATION,
 * ADAPTER_TIMEOUT (no SDK result within timeout_s + 1 s), ADAPTER_FAILURE (a bug
 * here, or atoma-sdk not installed).
 *
 * Dependencies: package.json pins atoma-sdk exactly; its peer dependency zod is
 * installed by npm's automatic peer install and pinned by package-lock.json
 * (zod 4 at the time of writing; zod 3.25.76 gave the same outcomes on every
 * mock fault).
 */
"use strict";

const CLIENT = "atoma-sdk 0.1.1 (npm)";
const OPERATIONS = ["chat", "chat-stream", "completions", "embeddings", "images"];
const DETAIL_MAX = 200;

let apiKey = null; // remembered only to scrub it from error details
let emitted = false;

class BadInstruction extends Error {}

function emit(outcome, content, errorCode, detail) {
  if (emitted) return;
  emitted = true;
  const result = { outcome, content, error_code: errorCode, detail, client: CLIENT };
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
}

function shorten(text) {
  let s = String(text == null ? "" : text).replace(/\s+/g, " ").trim();
  if (apiKey) {
    s = s.split(`Bearer ${apiKey}`).join("Bearer ***");
    if (apiKey.length >= 6) s = s.split(apiKey).join("***"); // a tiny key would mangle the text
  }
  return s.length > DETAIL_MAX ? s.slice(0, DETAIL_MAX - 3) + "..." : s;
}

// A stable short code: the error's own name (APIError, SDKValidationError,
// ZodError, ...) or, for anonymous errors, its class.
function errorCode(err) {
  if (err && typeof err.name === "string" && err.name && err.name !== "Error") return err.name;
  if (err && err.constructor && err.constructor.name) return err.constructor.name;
  return "Error";
}

// The error message, or for a ZodError (or an error caused by one) its issues:
// a ZodError's own message is a multi-line JSON dump.
function describe(err) {
  for (let e = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (Array.isArray(e.issues) && e.issues.length) {
      const issues = e.issues.map((i) => `${(i.path || []).join(".") || "(root)"}: ${i.message}`).join("; ");
      return e === err ? issues : `${String(err.message).split(":")[0]}: ${issues}`;
    }
  }
  return err && err.message ? err.message : String(err);
}

function readStdin() {
  return new Promise((resolve, reject) => {
    const parts = [];
    process.stdin.on("data", (d) => parts.push(d));
    process.stdin.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function need(cond, field, why) {
  if (!cond) throw new BadInstruction(`${field}: ${why}`);
}

function parseInstruction(text) {
  let ins;
  try {
    ins = JSON.parse(text);
  } catch (e) {
    throw new BadInstruction("stdin: not valid JSON");
  }
  need(ins !== null && typeof ins === "object" && !Array.isArray(ins), "instruction", "must be a JSON object");
  for (const f of ["contract", "base_url", "api_key", "model", "operation"]) need(f in ins, f, "missing");
  need(ins.contract === 1, "contract", "must be 1");
  need(typeof ins.base_url === "string" && /^https?:\/\//.test(ins.base_url), "base_url", "must be an http(s) URL");
  need(typeof ins.api_key === "string" && ins.api_key !== "", "api_key", "must be a non-empty string");
  apiKey = ins.api_key;
  need(typeof ins.model === "string" && ins.model !== "", "model", "must be a non-empty string");
  need(OPERATIONS.includes(ins.operation), "operation", `must be one of ${OPERATIONS.join(", ")}`);
  if (!("params" in ins)) ins.params = {};
  need(ins.params !== null && typeof ins.params === "object" && !Array.isArray(ins.params), "params", "must be an object");
  need(ins.node_address == null || typeof ins.node_address === "string", "node_address", "must be a string or null");
  const t = ins.timeout_s == null ? 30 : ins.timeout_s;
  need(typeof t === "number" && t > 0, "timeout_s", "must be a positive number");
  ins.timeout_s = t;
  return ins;
}

// Contract params (snake_case) -> the SDK's request objects (camelCase).
function buildRequest(ins) {
  const p = ins.params;
  const req = { model: ins.model };
  switch (ins.operation) {
    case "chat":
    case "chat-stream":
      need(Array.isArray(p.messages), "params.messages", "must be an array");
      req.messages = p.messages;
      if (p.max_tokens != null) req.maxTokens = p.max_tokens;
      break;
    case "embeddings":
      need(typeof p.input === "string" || Array.isArray(p.input), "params.input", "must be a string or an array");
      req.input = p.input;
      break;
    case "images":
      need(typeof p.prompt === "string", "params.prompt", "must be a string");
      req.prompt = p.prompt;
      if (p.n != null) req.n = p.n;
      if (p.size != null) req.size = p.size;
      break;
  }
  return req;
}

// Runs the SDK call; only what happens in here can make the outcome "error".
async function callSdk(sdk, op, req, options) {
  switch (op) {
    case "chat":
      return sdk.confidentialChat.create(req, options);
    case "chat-stream": {
      const stream = await sdk.confidentialChat.createStream(req, options);
      const events = [];
      for await (const event of stream) events.push(event); // a throw mid-stream is an error
      return events;
    }
    case "embeddings":
      return sdk.confidentialEmbeddings.create(req, options);
    case "images":
      return sdk.confidentialImages.generate(req, options);
  }
}

// Summarises what the SDK returned; the SDK has already accepted it, so a
// shape this cannot read gives content null rather than an error.
function contentOf(op, res) {
  try {
    switch (op) {
      case "chat":
        return res.choices[0].message.content ?? null;
      case "chat-stream":
        return res
          .map((e) => e && e.data && e.data.choices && e.data.choices[0] && e.data.choices[0].delta)
          .map((d) => (d && typeof d.content === "string" ? d.content : ""))
          .join("");
      case "embeddings":
        return `${res.data.length}x${res.data[0].embedding.length}`;
      case "images":
        return `${res.data.length} image(s)`;
    }
  } catch (e) {
    return null;
  }
}

async function main() {
  let ins, req;
  try {
    ins = parseInstruction(await readStdin());
    req = ins.operation === "completions" ? null : buildRequest(ins);
  } catch (e) {
    if (e instanceof BadInstruction) return emit("error", null, "BAD_INSTRUCTION", shorten(e.message));
    throw e;
  }
  if (ins.operation === "completions") {
    return emit("error", null, "UNSUPPORTED_OPERATION",
      "atoma-sdk 0.1.1 has no confidential (encrypting) completions method");
  }

  const { AtomaSDK } = require("atoma-sdk");
  const timeoutMs = Math.round(ins.timeout_s * 1000);
  const sdk = new AtomaSDK({ bearerAuth: ins.api_key, serverURL: ins.base_url, timeoutMs });

  // Backstop: the SDK's timeoutMs is an AbortSignal.timeout() per HTTP request,
  // so it does not bound the whole operation, and on Node 20 it never fires once
  // that signal has been garbage-collected (observed: against a server that never
  // answers, confidentialChat.create hangs well past timeoutMs).
  const watchdog = setTimeout(() => {
    emit("error", null, "ADAPTER_TIMEOUT", `no SDK result within timeout_s (${ins.timeout_s}s) + 1s`);
  }, timeoutMs + 1000);

  // The SDK logs (e.g. console.error('Decryption error:', ...)); keep stdout for the result only.
  const saved = {};
  for (const k of ["log", "info", "debug", "warn", "error"]) {
    saved[k] = console[k];
    console[k] = () => {};
  }
  let outcome;
  try {
    outcome = { ok: true, res: await callSdk(sdk, ins.operation, req, { timeoutMs }) };
  } catch (e) {
    outcome = { ok: false, err: e };
  } finally {
    Object.assign(console, saved);
    clearTimeout(watchdog);
  }
  if (outcome.ok) emit("ok", contentOf(ins.operation, outcome.res), null, null);
  else emit("error", null, errorCode(outcome.err), shorten(describe(outcome.err)));
}

main().catch((e) => emit("error", null, "ADAPTER_FAILURE", shorten(`${errorCode(e)}: ${e && e.message}`)));
