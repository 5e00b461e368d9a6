/**
 * The page: picks or receives a GGUF, hands it to the engine host worker (host_worker.ts) and chats with streaming,
 * stop and new chat; exposes `globalThis.yangtuo` ({ ready, load, generate, chat, stop, reset }) for tests and
 * power users. Nothing leaves the machine: the model is read from the picked File where it lies.
 * see: protocol.ts, ../index.html
 */
/// <reference lib="dom" />
import type {
  ChatResultMessage,
  GenerateParams,
  GenerateResultMessage,
  HostEvent,
  HostInfo,
  HostRequest,
  LoadParams,
  ModelInfo,
} from "./protocol.ts";

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; onEvent?: (e: HostEvent) => void };

const host = new Worker(new URL("./host_worker.js", import.meta.url), { type: "module" });
const pending = new Map<number, Pending>();
let nextId = 1;

host.onmessage = (ev: MessageEvent<HostEvent>) => {
  const e = ev.data;
  const p = pending.get(e.id);
  if (!p) return;
  if (e.type === "done") {
    pending.delete(e.id);
    p.resolve(e.result);
  } else if (e.type === "error") {
    pending.delete(e.id);
    p.reject(Object.assign(new Error(e.message), { hint: e.hint }));
  } else p.onEvent?.(e);
};
host.onerror = (ev) => {
  for (const p of pending.values()) p.reject(new Error(`The engine worker failed: ${ev.message}`));
  pending.clear();
};

// deno-lint-ignore no-explicit-any
type DistributiveOmit<T, K extends PropertyKey> = T extends any ? Omit<T, K> : never;

function request<T>(msg: DistributiveOmit<HostRequest, "id">, onEvent?: (e: HostEvent) => void): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onEvent });
    host.postMessage({ ...msg, id } as HostRequest);
  });
}

const onText = (f?: (s: string) => void) => (e: HostEvent) => {
  if (e.type === "text") f?.(e.text);
};

/** The page's API. */
const api = {
  /** Resolves once the kernels and the shard worker's code are in memory (after that nothing is fetched). */
  ready: request<HostInfo>({
    type: "init",
    kernelsUrl: new URL("./kernels.wasm", import.meta.url).href,
    shardWorkerUrl: new URL("./shard_worker.js", import.meta.url).href,
  }),
  /** The loaded model, once load() has resolved. */
  info: undefined as ModelInfo | undefined,
  /** Loads a GGUF from a File/Blob (read in place) or a URL (fetched once). */
  async load(fileOrUrl: Blob | string, params: LoadParams = {}, onProgress?: (done: number, total: number) => void) {
    await api.ready;
    api.info = undefined;
    // a URL is resolved against the page, not the worker's script
    const source = typeof fileOrUrl === "string" ? new URL(fileOrUrl, location.href).href : fileOrUrl;
    const name = typeof fileOrUrl === "string" ? fileOrUrl : (fileOrUrl as File).name;
    api.info = await request<ModelInfo>({ type: "load", source, name, params }, (e) => {
      if (e.type === "progress") onProgress?.(e.done, e.total);
    });
    return api.info;
  },
  /** One-shot completion with `deno task generate`'s defaults (temp 0.8, n 128, random seed, …). */
  generate(prompt: string, params: GenerateParams = {}, stream?: (text: string) => void) {
    return request<GenerateResultMessage>({ type: "generate", prompt, params }, onText(stream));
  },
  /** One chat turn in the model's template (the conversation is remembered until reset()). */
  chat(text: string, stream?: (text: string) => void) {
    return request<ChatResultMessage>({ type: "chat", text }, onText(stream));
  },
  /** Stops the running reply (its text so far stays in the conversation). */
  stop() {
    host.postMessage({ type: "stop", id: 0 });
  },
  /** Starts a new chat (the preamble stays). */
  reset() {
    return request<null>({ type: "reset" });
  },
};
(globalThis as unknown as { yangtuo: typeof api }).yangtuo = api;

// ---- the UI ----
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $("status");
const notice = $("notice");
const log = $("log");
const input = $<HTMLTextAreaElement>("input");
const send = $<HTMLButtonElement>("send");
const stopButton = $<HTMLButtonElement>("stop");
const newChat = $<HTMLButtonElement>("new-chat");
const fileInput = $<HTMLInputElement>("file");
const openServed = $<HTMLButtonElement>("open-served");
const drop = $("drop");
const stats = $("stats");
let busy = false;

function setBusy(b: boolean) {
  busy = b;
  send.disabled = b || !api.info;
  stopButton.disabled = !b;
  newChat.disabled = b || !api.info;
  fileInput.disabled = b;
  openServed.disabled = b;
}

function bubble(cls: string, text: string): HTMLElement {
  const div = document.createElement("div");
  div.className = `msg ${cls}`;
  div.textContent = text;
  log.append(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

function showError(e: unknown) {
  const err = e as Error & { hint?: string };
  bubble("error", `error: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ""}`);
}

async function loadFromUi(source: Blob | string) {
  if (busy) return;
  setBusy(true);
  status.textContent = "loading…";
  try {
    const info = await api.load(source, {}, (done, total) => {
      status.textContent = `loading weights ${Math.floor((100 * done) / total)}%`;
    });
    log.replaceChildren();
    status.textContent = `${info.name}: dim ${info.dim}, ${info.nLayers} layers, vocab ${info.vocabSize}; ` +
      `${info.nThreads} thread(s), template ${info.template}; loaded in ${(info.loadMs / 1000).toFixed(1)} s`;
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
    const rate = r.generateMs > 0 ? ((r.nGenerated / r.generateMs) * 1000).toFixed(1) : "–";
    stats.textContent = `prompt ${r.nPromptTokens} tokens in ${(r.promptMs / 1000).toFixed(2)} s; ` +
      `${r.nGenerated} tokens at ${rate} tok/s (${r.stop})`;
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
  // the worker handles requests in order: a message sent after this one talks to the new chat
  log.replaceChildren();
  stats.textContent = "";
  api.reset().catch(showError);
};
fileInput.onchange = () => {
  const f = fileInput.files?.[0];
  if (f) loadFromUi(f);
};
openServed.onclick = () => loadFromUi(new URL("model.gguf", location.href).href);
for (const t of ["dragenter", "dragover"]) {
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
status.textContent = "starting…";
api.ready.then(async (h) => {
  status.textContent = "no model: pick or drop a .gguf (it stays on this machine)";
  notice.textContent = h.crossOriginIsolated
    ? `cross-origin isolated: up to ${h.hardwareConcurrency} threads`
    : "not cross-origin isolated: running on one thread (serve with `deno task web` for all cores)";
  notice.className = h.crossOriginIsolated ? "ok" : "warn";
  // the model served with `deno task web -m FILE`, if any (asked once, while the page loads)
  const head = await fetch("model.gguf", { method: "HEAD" }).catch(() => undefined);
  openServed.hidden = !head?.ok;
  document.body.dataset.ready = "1";
}, (e) => {
  status.textContent = "the engine failed to start";
  showError(e);
});
