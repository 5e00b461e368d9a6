/**
 * `web`: serves the browser page (web/) on loopback with the headers that make it cross-origin isolated
 * (COOP same-origin + COEP require-corp: SharedArrayBuffer, so the engine runs on all cores), plus the one model
 * given with -m at /model.gguf. Static files only: the model runs in the browser, the server computes nothing
 * and accepts no uploads (GET and HEAD only).
 * see: web/index.html, web/src/page.ts, https://web.dev/articles/coop-coep
 */
import { DEFAULT_MODEL_PATH } from "./_default_model.ts";
import { UsageError, UserError } from "../core/errors.ts";
import { intFlag, parseFlags } from "./_args.ts";

const USAGE = `usage: deno task web [--port N] [-m MODEL]

Serves the yangtuo page on http://127.0.0.1:PORT/ (loopback only). The page runs the engine in your browser:
pick or drop a .gguf and chat; the file is read where it lies, nothing is uploaded.

  -m, --model PATH   also serve this GGUF at /model.gguf (the page opens it with one click); default: the shipped
                     models/yangtuo-poetry/yangtuo-poetry-q8_0.gguf when it is there
      --port N       port (default 8000; 0 picks a free one)
  -h, --help         show this help`;

/** Content types of the files the page is made of. */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  wasm: "application/wasm",
  css: "text/css; charset=utf-8",
  json: "application/json; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
};

/**
 * Every response: cross-origin isolation, no sniffing, and a CSP that lets the page talk only to this origin
 * (workers from blob: URLs, WebAssembly compilation), so a page that tried to send anything elsewhere would fail.
 */
export const WEB_HEADERS: Readonly<Record<string, string>> = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "x-content-type-options": "nosniff",
  "content-security-policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; " +
    "worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
  "cache-control": "no-cache",
};

/** Options of serveWeb(). */
export interface ServeWebOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** A GGUF served at /model.gguf. */
  model?: string;
  /** The folder served (default: this checkout's web/). */
  root?: string;
  /** Headers left out (tests of the one-thread fallback drop the isolation headers). */
  omitHeaders?: string[];
  /** Called for every request (tests count them). */
  onRequest?: (method: string, path: string) => void;
  signal?: AbortSignal;
}

/** A running page server. */
export interface WebServer {
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

const DEFAULT_ROOT = new URL("../../web/", import.meta.url).pathname;

function headersFor(type: string, size: number | undefined, omit: string[]): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(WEB_HEADERS)) if (!omit.includes(k)) h.set(k, v);
  h.set("content-type", type);
  if (size !== undefined) h.set("content-length", String(size));
  return h;
}

/** Opens a regular file for a response, or undefined when it is missing (or a folder). */
async function openFile(path: string): Promise<{ file: Deno.FsFile; size: number } | undefined> {
  try {
    const file = await Deno.open(path, { read: true });
    const st = await file.stat();
    if (!st.isFile) {
      file.close();
      return undefined;
    }
    return { file, size: st.size };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.IsADirectory) return undefined;
    throw e;
  }
}

/** Starts the page server (GET/HEAD of static files under `root`, and /model.gguf). */
export function serveWeb(options: ServeWebOptions): WebServer {
  const root = (options.root ?? DEFAULT_ROOT).replace(/\/?$/, "/");
  const omit = options.omitHeaders ?? [];
  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    options.onRequest?.(req.method, url.pathname);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("static files only\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      return new Response("bad path\n", { status: 400 });
    }
    if (rel === "/") rel = "/index.html";
    let path: string;
    let type: string;
    if (rel === "/model.gguf") {
      if (!options.model) return new Response("no model is served (start with -m MODEL)\n", { status: 404 });
      path = options.model;
      type = "application/octet-stream";
    } else {
      // only plain names: no "..", no dotfiles, no backslashes or NULs
      const parts = rel.split("/").slice(1);
      if (parts.some((p) => p === "" || p.startsWith(".") || /[\\\0]/.test(p))) {
        return new Response("not found\n", { status: 404 });
      }
      const ext = parts[parts.length - 1].split(".").pop() ?? "";
      if (!(ext in TYPES)) return new Response("not found\n", { status: 404 });
      path = root + parts.join("/");
      type = TYPES[ext];
    }
    const f = await openFile(path);
    if (!f) return new Response("not found\n", { status: 404 });
    const headers = headersFor(type, f.size, omit);
    if (req.method === "HEAD") {
      f.file.close();
      return new Response(null, { headers });
    }
    return new Response(f.file.readable, { headers });
  };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port,
    signal: options.signal,
    onListen: () => {},
  }, handler);
  const addr = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${addr.port}/`,
    finished: server.finished,
    shutdown: () => server.shutdown(),
  };
}

/** Runs `web`. */
export async function run(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    model: { type: "string", short: "m" },
    port: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const port = intFlag(v.port, "--port", 8000, 0);
  if (port > 65535) throw new UsageError(`--port expects an integer ≤ 65535, got "${v.port}"`);
  let model: string | undefined;
  if (v.model !== undefined) {
    model = Deno.realPathSync(checkModel(v.model));
  } else {
    // no -m: the shipped default model, one click away on the page (nothing is served when it is missing)
    try {
      if (Deno.statSync(DEFAULT_MODEL_PATH).isFile) model = Deno.realPathSync(DEFAULT_MODEL_PATH);
    } catch { /* not there: the page still opens any file the user picks */ }
  }
  let server: WebServer;
  try {
    server = serveWeb({ port, model });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new UserError(`Cannot listen on 127.0.0.1:${port}: the port is in use`, "pick another with --port N");
    }
    throw e;
  }
  const stop = () => server.shutdown();
  Deno.addSignalListener("SIGINT", stop);
  console.log(`serving the yangtuo page on ${server.url}${model ? ` (model: ${model} at /model.gguf)` : ""}`);
  console.log("open it in a browser; Ctrl+C stops the server");
  await server.finished;
  Deno.removeSignalListener("SIGINT", stop);
  return 0;
}

/** The -m file must be a GGUF file; returns the path. */
function checkModel(path: string): string {
  let head: Uint8Array;
  try {
    const f = Deno.openSync(path, { read: true });
    try {
      if (!f.statSync().isFile) {
        throw new UserError(`Cannot serve model "${path}": it is a folder`, "pass a .gguf file");
      }
      head = new Uint8Array(4);
      const n = f.readSync(head) ?? 0;
      head = head.subarray(0, n);
    } finally {
      f.close();
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot serve model "${path}": file not found`, "check the path given with -m");
    }
    throw e;
  }
  if (head.length < 4 || head[0] !== 0x47 || head[1] !== 0x47 || head[2] !== 0x55 || head[3] !== 0x46) {
    throw new UserError(`Cannot serve model "${path}": not a GGUF file`, "convert it first with `deno task convert`");
  }
  return path;
}
