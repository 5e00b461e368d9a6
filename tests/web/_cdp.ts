/**
 * A small Chrome DevTools Protocol driver for the web tests and bench: launches headless Debian `chromium`,
 * attaches to a page (and, flattened, to its workers), evaluates script, uploads files, records network requests
 * and takes screenshots. No npm package: the protocol is JSON over one WebSocket.
 * see: https://chromedevtools.github.io/devtools-protocol/
 */

/** Path of the chromium binary, or undefined when it is not installed. */
export function findChromium(): string | undefined {
  for (const p of [Deno.env.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (!p) continue;
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* next */ }
  }
  return undefined;
}

type Handler = (params: Record<string, unknown>, sessionId?: string) => void;

/** A request seen by any attached target. */
export interface SeenRequest {
  url: string;
  method: string;
  target: string;
}

/** One browser, one page. */
export class Browser {
  #ws!: WebSocket;
  #next = 1;
  #calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #handlers = new Map<string, Handler[]>();
  #proc!: Deno.ChildProcess;
  #dir!: string;
  /** The page's session. */
  session = "";
  /** Every request (page and workers) since recording started. */
  readonly requests: SeenRequest[] = [];
  /** Console messages and exceptions of the page and its workers. */
  readonly console: string[] = [];

  static async launch(binary: string, extraArgs: string[] = []): Promise<Browser> {
    const b = new Browser();
    b.#dir = Deno.makeTempDirSync({ prefix: "yangtuo-chromium-" });
    b.#proc = new Deno.Command(binary, {
      args: [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-port=0",
        `--user-data-dir=${b.#dir}`,
        "--window-size=1000,760",
        // a page driven by a test is never "in the background": full timers and CPU priority
        "--disable-renderer-backgrounding",
        "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows",
        ...extraArgs,
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const wsUrl = await b.#readDevtoolsUrl();
    b.#ws = new WebSocket(wsUrl);
    await new Promise((resolve, reject) => {
      b.#ws.onopen = resolve;
      b.#ws.onerror = (e) => reject(new Error(`Cannot connect to chromium: ${(e as ErrorEvent).message}`));
    });
    b.#ws.onmessage = (ev) => b.#dispatch(JSON.parse(ev.data));
    await b.#attachPage();
    return b;
  }

  async #readDevtoolsUrl(): Promise<string> {
    const reader = this.#proc.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) {
        // keep draining stderr so chromium never blocks on a full pipe
        (async () => {
          while (!(await reader.read()).done) { /* drain */ }
        })().catch(() => {});
        return m[1];
      }
    }
    throw new Error(`Cannot start chromium: no DevTools URL in its output:\n${text.slice(0, 2000)}`);
  }

  #dispatch(
    msg: {
      id?: number;
      result?: unknown;
      error?: { message: string };
      method?: string;
      params?: Record<string, unknown>;
      sessionId?: string;
    },
  ) {
    if (msg.id !== undefined) {
      const c = this.#calls.get(msg.id);
      if (!c) return;
      this.#calls.delete(msg.id);
      if (msg.error) c.reject(new Error(`CDP: ${msg.error.message}`));
      else c.resolve(msg.result);
      return;
    }
    for (const h of this.#handlers.get(msg.method ?? "") ?? []) h(msg.params ?? {}, msg.sessionId);
  }

  /** Sends a CDP command (to the page's session unless `sessionId` is given; "" = the browser). */
  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}, sessionId = this.session) {
    const id = this.#next++;
    const msg: Record<string, unknown> = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise<T>((resolve, reject) => {
      this.#calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#ws.send(JSON.stringify(msg));
    });
  }

  on(method: string, h: Handler): void {
    this.#handlers.set(method, [...(this.#handlers.get(method) ?? []), h]);
  }

  async #attachPage(): Promise<void> {
    const { targetId } = await this.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" }, "");
    const { sessionId } = await this.send<{ sessionId: string }>(
      "Target.attachToTarget",
      { targetId, flatten: true },
      "",
    );
    this.session = sessionId;
    // workers (and their nested workers) attach as sessions of their own: watch their network and console too
    this.on("Target.attachedToTarget", (p) => {
      const s = p.sessionId as string;
      const info = p.targetInfo as { type: string; url: string };
      this.#watch(s, info.type).catch(() => {});
    });
    await this.#watch(sessionId, "page");
  }

  async #watch(sessionId: string, type: string): Promise<void> {
    await this.send(
      "Target.setAutoAttach",
      { autoAttach: true, waitForDebuggerOnStart: true, flatten: true },
      sessionId,
    )
      .catch(() => {});
    await this.send("Network.enable", {}, sessionId).catch(() => {});
    await this.send("Runtime.enable", {}, sessionId).catch(() => {});
    if (type === "page") await this.send("Page.enable", {}, sessionId);
    await this.send("Runtime.runIfWaitingForDebugger", {}, sessionId).catch(() => {});
  }

  /** Starts recording requests and console output (call once). */
  record(): void {
    this.on("Network.requestWillBeSent", (p, s) => {
      const r = p.request as { url: string; method: string };
      this.requests.push({ url: r.url, method: r.method, target: s ?? "" });
    });
    this.on("Runtime.consoleAPICalled", (p) => {
      const args = (p.args as { value?: unknown; description?: string }[]).map((a) => a.value ?? a.description);
      this.console.push(`${p.type}: ${args.join(" ")}`);
    });
    this.on("Runtime.exceptionThrown", (p) => {
      const d = p.exceptionDetails as { text: string; exception?: { description?: string } };
      this.console.push(`exception: ${d.exception?.description ?? d.text}`);
    });
  }

  /** Navigates the page and waits for its load event. */
  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => this.on("Page.loadEventFired", () => resolve()));
    await this.send("Page.navigate", { url });
    await loaded;
  }

  /** Evaluates an expression in the page (promises awaited); returns its value (JSON). */
  async eval<T = unknown>(expression: string, timeoutMs = 600_000): Promise<T> {
    const r = await this.send<
      { result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }
    >(
      "Runtime.evaluate",
      { expression, awaitPromise: true, returnByValue: true, timeout: timeoutMs },
    );
    if (r.exceptionDetails) {
      throw new Error(`page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    }
    return r.result.value as T;
  }

  /** Waits until `expression` is truthy. */
  async waitFor(expression: string, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await this.eval<boolean>(`!!(${expression})`)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Timed out waiting for ${expression}; console:\n${this.console.join("\n")}`);
  }

  /** Sets the files of an <input type=file> (as a user picking them) and fires its change event. */
  async setInputFiles(selector: string, files: string[]): Promise<void> {
    const { root } = await this.send<{ root: { nodeId: number } }>("DOM.getDocument", {});
    const { nodeId } = await this.send<{ nodeId: number }>("DOM.querySelector", { nodeId: root.nodeId, selector });
    await this.send("DOM.setFileInputFiles", { nodeId, files });
  }

  /** Emulates being offline (requests fail) or back online. */
  async offline(on: boolean): Promise<void> {
    await this.send("Network.emulateNetworkConditions", {
      offline: on,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
  }

  /** A PNG of the page. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.send<{ data: string }>("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }

  async close(): Promise<void> {
    try {
      await Promise.race([this.send("Browser.close", {}, ""), new Promise((r) => setTimeout(r, 3000))]);
    } catch { /* already gone */ }
    try {
      this.#ws.close();
    } catch { /* closed */ }
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* exited */ }
    await this.#proc.status;
    await this.#proc.stderr.cancel().catch(() => {});
    // chromium's helper processes may still be writing its profile for a moment
    for (let i = 0; i < 20; i++) {
      try {
        Deno.removeSync(this.#dir, { recursive: true });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}
