// web/src/page.ts
var host = new Worker(new URL("./host_worker.js", import.meta.url), {
  type: "module"
});
var pending = /* @__PURE__ */ new Map();
var nextId = 1;
host.onmessage = (ev) => {
  const e = ev.data;
  const p = pending.get(e.id);
  if (!p) return;
  if (e.type === "done") {
    pending.delete(e.id);
    p.resolve(e.result);
  } else if (e.type === "error") {
    pending.delete(e.id);
    p.reject(Object.assign(new Error(e.message), {
      hint: e.hint
    }));
  } else p.onEvent?.(e);
};
host.onerror = (ev) => {
  for (const p of pending.values()) p.reject(new Error(`The engine worker failed: ${ev.message}`));
  pending.clear();
};
function request(msg, onEvent) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, {
      resolve,
      reject,
      onEvent
    });
    host.postMessage({
      ...msg,
      id
    });
  });
}
var onText = (f) => (e) => {
  if (e.type === "text") f?.(e.text);
};
var api = {
  /** Resolves once the kernels and the shard worker's code are in memory (after that nothing is fetched). */
  ready: request({
    type: "init",
    kernelsUrl: new URL("./kernels.wasm", import.meta.url).href,
    shardWorkerUrl: new URL("./shard_worker.js", import.meta.url).href
  }),
  /** The loaded model, once load() has resolved. */
  info: void 0,
  /** Loads a GGUF from a File/Blob (read in place) or a URL (fetched once). */
  async load(fileOrUrl, params = {}, onProgress) {
    await api.ready;
    api.info = void 0;
    const source = typeof fileOrUrl === "string" ? new URL(fileOrUrl, location.href).href : fileOrUrl;
    const name = typeof fileOrUrl === "string" ? fileOrUrl : fileOrUrl.name;
    api.info = await request({
      type: "load",
      source,
      name,
      params
    }, (e) => {
      if (e.type === "progress") onProgress?.(e.done, e.total);
    });
    return api.info;
  },
  /** One-shot completion with `deno task generate`'s defaults (temp 0.8, n 128, random seed, …). */
  generate(prompt, params = {}, stream) {
    return request({
      type: "generate",
      prompt,
      params
    }, onText(stream));
  },
  /** One chat turn in the model's template (the conversation is remembered until reset()). */
  chat(text, stream) {
    return request({
      type: "chat",
      text
    }, onText(stream));
  },
  /** Stops the running reply (its text so far stays in the conversation). */
  stop() {
    host.postMessage({
      type: "stop",
      id: 0
    });
  },
  /** Starts a new chat (the preamble stays). */
  reset() {
    return request({
      type: "reset"
    });
  }
};
globalThis.yangtuo = api;
var $ = (id) => document.getElementById(id);
var status = $("status");
var notice = $("notice");
var log = $("log");
var input = $("input");
var send = $("send");
var stopButton = $("stop");
var newChat = $("new-chat");
var fileInput = $("file");
var openServed = $("open-served");
var drop = $("drop");
var stats = $("stats");
var busy = false;
function setBusy(b) {
  busy = b;
  send.disabled = b || !api.info;
  stopButton.disabled = !b;
  newChat.disabled = b || !api.info;
  fileInput.disabled = b;
  openServed.disabled = b;
}
function bubble(cls, text) {
  const div = document.createElement("div");
  div.className = `msg ${cls}`;
  div.textContent = text;
  log.append(div);
  log.scrollTop = log.scrollHeight;
  return div;
}
function showError(e) {
  const err = e;
  bubble("error", `error: ${err.message}${err.hint ? `
hint: ${err.hint}` : ""}`);
}
async function loadFromUi(source) {
  if (busy) return;
  setBusy(true);
  status.textContent = "loading\u2026";
  try {
    const info = await api.load(source, {}, (done, total) => {
      status.textContent = `loading weights ${Math.floor(100 * done / total)}%`;
    });
    log.replaceChildren();
    status.textContent = `${info.name}: dim ${info.dim}, ${info.nLayers} layers, vocab ${info.vocabSize}; ${info.nThreads} thread(s), template ${info.template}; loaded in ${(info.loadMs / 1e3).toFixed(1)} s`;
  } catch (e) {
    status.textContent = "no model";
    showError(e);
  } finally {
    setBusy(false);
  }
}
async function sendFromUi() {
  const text = input.value.trim();
  if (!text || busy || !api.info) return;
  input.value = "";
  bubble("user", text);
  const out = bubble("bot", "");
  setBusy(true);
  try {
    const r = await api.chat(text, (s) => {
      out.textContent += s;
      log.scrollTop = log.scrollHeight;
    });
    const rate = r.generateMs > 0 ? (r.nGenerated / r.generateMs * 1e3).toFixed(1) : "\u2013";
    stats.textContent = `prompt ${r.nPromptTokens} tokens in ${(r.promptMs / 1e3).toFixed(2)} s; ${r.nGenerated} tokens at ${rate} tok/s (${r.stop})`;
  } catch (e) {
    showError(e);
  } finally {
    setBusy(false);
    input.focus();
  }
}
send.onclick = (e) => {
  e.preventDefault();
  sendFromUi();
};
input.onkeydown = (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendFromUi();
  }
};
stopButton.onclick = () => api.stop();
newChat.onclick = () => {
  log.replaceChildren();
  stats.textContent = "";
  api.reset().catch(showError);
};
fileInput.onchange = () => {
  const f = fileInput.files?.[0];
  if (f) loadFromUi(f);
};
openServed.onclick = () => loadFromUi(new URL("model.gguf", location.href).href);
for (const t of [
  "dragenter",
  "dragover"
]) {
  document.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
}
document.addEventListener("dragleave", () => drop.classList.remove("over"));
document.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const f = e.dataTransfer?.files?.[0];
  if (f) loadFromUi(f);
});
setBusy(false);
status.textContent = "starting\u2026";
api.ready.then(async (h) => {
  status.textContent = "no model: pick or drop a .gguf (it stays on this machine)";
  notice.textContent = h.crossOriginIsolated ? `cross-origin isolated: up to ${h.hardwareConcurrency} threads` : "not cross-origin isolated: running on one thread (serve with `deno task web` for all cores)";
  notice.className = h.crossOriginIsolated ? "ok" : "warn";
  const head = await fetch("model.gguf", {
    method: "HEAD"
  }).catch(() => void 0);
  openServed.hidden = !head?.ok;
  document.body.dataset.ready = "1";
}, (e) => {
  status.textContent = "the engine failed to start";
  showError(e);
});
