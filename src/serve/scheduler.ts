/**
 * Scheduler: continuous batching over an engine's KV cache slots. Each admitted request owns a slot; every step,
 * the sequences that are generating sample their next token and all of them advance in one batched forward
 * (engine.evalBatch), so N streams read the weights once per step, not N times. A newly admitted prompt is read in
 * chunks that ride along the same forwards (its rows first, the decode rows and its last token, whose logits are
 * needed, at the end), so a long prompt delays the running streams by a chunk per step, not by its whole length.
 * Requests beyond the slots wait in one FIFO queue (first come, first served); a full queue refuses at once (503).
 * A request whose signal aborts (client gone) leaves at the next step and its slot is free again. Between steps the
 * scheduler yields to the event loop, so the server keeps accepting and streaming while the model runs.
 * see: llama.cpp tools/server/server.cpp (slots, update_slots: one batch of decode tokens and prompt chunks),
 * Orca (OSDI '22) iteration-level scheduling
 */
import { ApiError } from "./api_error.ts";

/** What the scheduler needs from an engine (the project's Engine satisfies it). */
export interface SchedulerEngine {
  readonly contextSize: number;
  readonly slots: number;
  /** Rows of several sequences (a slot may repeat at increasing positions); logits of the last nLogits rows. */
  evalBatch(rows: { slot: number; token: number; pos: number }[], nLogits: number): Promise<Float32Array[]>;
  evalHidden(slot: number, tokens: number[], startPos: number): Promise<Float32Array[]>;
}

/** Why a generation ended: EOS or a stop string ("stop"), max_tokens or the context end ("length"). */
export type FinishReason = "stop" | "length" | "cancelled" | "error";

/** A completion request as the scheduler sees it: tokens in, tokens out through callbacks. */
export interface GenerationJob {
  prompt: number[];
  /** Most tokens to sample (the context end stops it earlier). */
  maxTokens: number;
  /** Ids that end the reply without being emitted (EOS). */
  stopIds: ReadonlySet<number>;
  /** Picks the next token. */
  sample(logits: Float32Array): number;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** Each sampled token (not a stop id) with the logits it was drawn from; returns false to stop (a stop string). */
  onToken(id: number, logits: Float32Array): boolean;
  /** Called once, last. */
  onEnd(reason: FinishReason, error?: unknown): void;
}

/** Counters for /health and the bench. */
export interface SchedulerStats {
  slots: number;
  slotsIdle: number;
  slotsProcessing: number;
  queued: number;
  /** Forwards with decode rows, and those rows (rows / steps = sequences per step); prompt tokens read. */
  steps: number;
  rows: number;
  promptRows: number;
}

interface Active {
  job: GenerationJob;
  /** Prompt tokens in the cache so far. */
  fed: number;
  /** Position of the next token to evaluate. */
  pos: number;
  /** Logits to sample from; null while the prompt is being read. */
  logits: Float32Array | null;
  /** The token sampled last (evaluated in the next step). */
  token: number;
  generated: number;
}

type Queued =
  | { kind: "generate"; job: GenerationJob; signal: AbortSignal }
  | {
    kind: "hidden";
    tokens: number[];
    signal: AbortSignal;
    resolve: (h: Float32Array[]) => void;
    reject: (e: unknown) => void;
  };

type Row = { slot: number; token: number; pos: number };

/** setImmediate where the runtime has it (Deno, Node), else setTimeout (a browser). */
const immediate: (f: () => void) => unknown = (globalThis as { setImmediate?: (f: () => void) => unknown })
  .setImmediate ?? ((f) => setTimeout(f, 0));

/**
 * One macrotask turn (awaiting a resolved promise never gives one): new requests and cancellations get in.
 * setImmediate, not setTimeout(0): nested timeouts are clamped to 4 ms a turn.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => immediate(resolve));
}

/**
 * A timer turn before a forward blocks the thread: the event loop polls network I/O until then, so the tokens just
 * sampled reach their sockets (a single setImmediate turn moved a chunk one stage per step, and a token arrived
 * several steps late). Costs the 4 ms timer clamp per step.
 */
function flushToSockets(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Scheduler settings. */
export interface SchedulerOptions {
  /** Requests that may wait for a slot (503 beyond). */
  maxQueue: number;
  /** Rows per forward, decode rows included, given to prompt chunks (at least 8 prompt tokens a step). Default 64. */
  chunk?: number;
}

/** Continuous batching over `engine.slots` slots with a bounded FIFO queue. */
export class Scheduler {
  readonly engine: SchedulerEngine;
  readonly maxQueue: number;
  readonly chunk: number;
  readonly #free: number[];
  readonly #active = new Map<number, Active>();
  readonly #queue: Queued[] = [];
  #running = false;
  #closed = false;
  #steps = 0;
  #rows = 0;
  #promptRows = 0;

  constructor(engine: SchedulerEngine, options: SchedulerOptions) {
    this.engine = engine;
    this.maxQueue = options.maxQueue;
    this.chunk = options.chunk ?? 64;
    this.#free = Array.from({ length: engine.slots }, (_, i) => engine.slots - 1 - i);
  }

  stats(): SchedulerStats {
    return {
      slots: this.engine.slots,
      slotsIdle: this.#free.length,
      slotsProcessing: this.engine.slots - this.#free.length,
      queued: this.#queue.length,
      steps: this.#steps,
      rows: this.#rows,
      promptRows: this.#promptRows,
    };
  }

  /** Stops admitting work; queued and running requests end as cancelled. */
  close(): void {
    this.#closed = true;
    for (const q of this.#queue.splice(0)) this.#cancel(q);
    for (const a of this.#active.values()) a.job.onEnd("cancelled");
    this.#active.clear();
  }

  #cancel(q: Queued): void {
    if (q.kind === "generate") q.job.onEnd("cancelled");
    else q.reject(new ApiError(503, "The request was cancelled", "cancelled"));
  }

  #admit(q: Queued): void {
    if (this.#closed) throw new ApiError(503, "The server is shutting down", "server_shutting_down");
    // requests that will find no free slot wait; more than maxQueue of them is a 503
    const waiting = this.#queue.length - this.#free.length;
    if (waiting >= this.maxQueue) {
      throw new ApiError(503, `The server is busy: ${waiting} requests are waiting for a slot`, "server_busy");
    }
    this.#queue.push(q);
    this.#pump();
  }

  /** Queues a generation; throws ApiError 503 when the queue is full. The job's callbacks report the rest. */
  submit(job: GenerationJob): void {
    const ctx = this.engine.contextSize;
    if (job.prompt.length === 0 || job.prompt.length >= ctx) {
      throw new ApiError(
        400,
        `The prompt has ${job.prompt.length} tokens; this server's context holds ${ctx} (prompt + reply)`,
        "context_length_exceeded",
        "messages",
      );
    }
    this.#admit({ kind: "generate", job, signal: job.signal });
  }

  /** Runs `tokens` through a slot and returns every token's last hidden state (waits its turn in the queue). */
  hidden(tokens: number[], signal: AbortSignal): Promise<Float32Array[]> {
    const ctx = this.engine.contextSize;
    if (tokens.length === 0 || tokens.length > ctx) {
      throw new ApiError(
        400,
        `An input has ${tokens.length} tokens; this server's context holds ${ctx}`,
        "context_length_exceeded",
        "input",
      );
    }
    return new Promise((resolve, reject) => this.#admit({ kind: "hidden", tokens, signal, resolve, reject }));
  }

  #pump(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop().finally(() => this.#running = false);
  }

  #release(slot: number): void {
    this.#active.delete(slot);
    if (!this.#free.includes(slot)) this.#free.push(slot);
  }

  /** Samples the next token of `a`; returns why it ends, or null when it goes on (a.token is set). */
  #advance(a: Active): FinishReason | null {
    const job = a.job;
    const id = job.sample(a.logits!);
    if (job.stopIds.has(id)) return "stop";
    a.generated++;
    if (!job.onToken(id, a.logits!)) return "stop";
    if (a.generated >= job.maxTokens || a.pos >= this.engine.contextSize) return "length";
    a.token = id;
    return null;
  }

  async #loop(): Promise<void> {
    // one turn first: requests arriving together start in the same forward, and the handler that woke the loop
    // returns its response before the model blocks the thread
    await yieldToEventLoop();
    while (!this.#closed && (this.#queue.length > 0 || this.#active.size > 0)) {
      // 0. requests whose client left while waiting go now, without a slot
      for (let i = this.#queue.length - 1; i >= 0; i--) {
        if (this.#queue[i].signal.aborted) this.#cancel(this.#queue.splice(i, 1)[0]);
      }
      // 1. queued requests take free slots (embeddings run at once: one forward of their own)
      while (this.#free.length > 0 && this.#queue.length > 0) {
        const q = this.#queue.shift()!;
        const slot = this.#free.pop()!;
        if (q.kind === "generate") {
          this.#active.set(slot, { job: q.job, fed: 0, pos: 0, logits: null, token: -1, generated: 0 });
          continue;
        }
        try {
          const h = await this.engine.evalHidden(slot, q.tokens, 0);
          this.#free.push(slot);
          q.resolve(h);
        } catch (e) {
          this.#free.push(slot);
          q.reject(e);
        }
        if (this.#closed) return;
      }
      // 2. every generating sequence samples its next token; those that go on are the decode rows
      const tail: Row[] = [];
      const owners: Active[] = [];
      for (const [slot, a] of [...this.#active]) {
        let reason: FinishReason | null = null;
        try {
          if (a.job.signal.aborted) reason = "cancelled";
          else if (a.logits !== null) reason = this.#advance(a);
          else continue; // still reading its prompt
        } catch (e) {
          this.#release(slot);
          a.job.onEnd("error", e);
          continue;
        }
        if (reason) {
          this.#release(slot);
          a.job.onEnd(reason);
        } else {
          tail.push({ slot, token: a.token, pos: a.pos++ });
          owners.push(a);
        }
      }
      const decodeRows = tail.length;
      // 3. prompt chunks fill the rest of the forward, oldest admission first; a prompt's last token needs logits
      const body: Row[] = [];
      let budget = Math.max(8, this.chunk - decodeRows);
      for (const [slot, a] of this.#active) {
        if (a.logits !== null || budget <= 0) continue;
        const p = a.job.prompt;
        const k = Math.min(budget, p.length - a.fed);
        budget -= k;
        for (let t = a.fed; t < a.fed + k; t++) {
          if (t === p.length - 1) {
            tail.push({ slot, token: p[t], pos: t });
            owners.push(a);
          } else body.push({ slot, token: p[t], pos: t });
        }
        a.fed += k;
        a.pos = a.fed;
      }
      // 4. one forward for all of them; first let the tokens just sampled reach their sockets (the forward blocks
      // this thread, so without the turn each token would arrive a step late)
      if (decodeRows > 0) {
        await flushToSockets();
        if (this.#closed) return;
      }
      if (body.length + tail.length > 0) {
        const rows = [...body, ...tail];
        try {
          const out = await this.engine.evalBatch(rows, tail.length);
          if (decodeRows > 0) this.#steps++;
          this.#rows += decodeRows;
          this.#promptRows += rows.length - decodeRows;
          owners.forEach((a, i) => a.logits = out[i]);
        } catch (e) {
          for (const slot of new Set(rows.map((r) => r.slot))) {
            const a = this.#active.get(slot);
            this.#release(slot);
            a?.job.onEnd("error", e);
          }
        }
      }
      await yieldToEventLoop();
    }
  }
}
