/**
 * Scheduler: continuous batching over an engine's KV cache slots. Each admitted request owns a slot; every step,
 * the sequences that are generating sample their next token and all of them advance in one batched forward
 * (engine.evalBatch), so N streams read the weights once per step, not N times. Requests beyond the slots wait in
 * one FIFO queue (first come, first served); a full queue refuses at once (503). A request whose signal aborts
 * (client gone) leaves at the next step and its slot is free again. Between steps the scheduler yields to the
 * event loop, so the server keeps accepting and streaming while the model runs.
 * see: llama.cpp tools/server/server.cpp (slots, update_slots), Orca (OSDI '22) iteration-level scheduling
 */
import { ApiError } from "./api_error.ts";

/** What the scheduler needs from an engine (the project's Engine satisfies it). */
export interface SchedulerEngine {
  readonly contextSize: number;
  readonly slots: number;
  evalSlot(slot: number, tokens: number[], startPos: number): Promise<Float32Array>;
  evalBatch(rows: { slot: number; token: number; pos: number }[]): Promise<Float32Array[]>;
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
  /** Batched forwards run, and rows in them (rows / steps = the mean batch). */
  steps: number;
  rows: number;
}

interface Active {
  job: GenerationJob;
  /** Position of the next token to evaluate. */
  pos: number;
  logits: Float32Array;
  /** The token sampled last (evaluated in the next step). */
  token: number;
  generated: number;
}

interface Queued {
  /**
   * Takes the slot: returns the running sequence, or (embeddings) a function that reports the finished work, called
   * once the slot is free again.
   */
  run(slot: number): Promise<Active | (() => void)>;
  signal: AbortSignal;
  cancel(): void;
  fail(error: unknown): void;
}

/** Lets timers and network I/O run between steps (a macrotask turn; awaiting a resolved promise never does). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Continuous batching over `engine.slots` slots with a bounded FIFO queue. */
export class Scheduler {
  readonly engine: SchedulerEngine;
  readonly maxQueue: number;
  readonly #free: number[];
  readonly #active = new Map<number, Active>();
  readonly #queue: Queued[] = [];
  #running = false;
  #closed = false;
  #steps = 0;
  #rows = 0;

  constructor(engine: SchedulerEngine, maxQueue: number) {
    this.engine = engine;
    this.maxQueue = maxQueue;
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
    };
  }

  /** Stops admitting work; queued and running requests end as cancelled. */
  close(): void {
    this.#closed = true;
    for (const q of this.#queue.splice(0)) q.cancel();
    for (const a of this.#active.values()) a.job.onEnd("cancelled");
    this.#active.clear();
  }

  #admit(q: Queued): void {
    if (this.#closed) throw new ApiError(503, "The server is shutting down", "server_shutting_down");
    if (this.#queue.length >= this.maxQueue && this.#free.length === 0) {
      throw new ApiError(503, `The server is busy: ${this.#queue.length} requests are waiting`, "server_busy");
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
    this.#admit({
      signal: job.signal,
      cancel: () => job.onEnd("cancelled"),
      fail: (e) => job.onEnd("error", e),
      run: async (slot) => {
        const logits = await this.engine.evalSlot(slot, job.prompt, 0);
        return { job, pos: job.prompt.length, logits, token: -1, generated: 0 };
      },
    });
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
    return new Promise((resolve, reject) => {
      this.#admit({
        signal,
        cancel: () => reject(new ApiError(503, "The request was cancelled", "cancelled")),
        fail: reject,
        run: async (slot) => {
          const hidden = await this.engine.evalHidden(slot, tokens, 0);
          return () => resolve(hidden);
        },
      });
    });
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
    if (job.signal.aborted) return "cancelled";
    const id = job.sample(a.logits);
    if (job.stopIds.has(id)) return "stop";
    a.generated++;
    if (!job.onToken(id, a.logits)) return "stop";
    if (a.generated >= job.maxTokens || a.pos >= this.engine.contextSize) return "length";
    a.token = id;
    return null;
  }

  async #loop(): Promise<void> {
    while (!this.#closed && (this.#queue.length > 0 || this.#active.size > 0)) {
      // 0. requests whose client left while waiting go now, without a slot
      for (let i = this.#queue.length - 1; i >= 0; i--) {
        if (this.#queue[i].signal.aborted) this.#queue.splice(i, 1)[0].cancel();
      }
      // 1. admit queued requests into free slots (the prompt is evaluated now, in the slot's region)
      while (this.#free.length > 0 && this.#queue.length > 0) {
        const q = this.#queue.shift()!;
        if (q.signal.aborted) {
          q.cancel();
          continue;
        }
        const slot = this.#free.pop()!;
        let a: Active | (() => void) | null = null;
        try {
          a = await q.run(slot);
        } catch (e) {
          this.#free.push(slot);
          q.fail(e);
          continue;
        }
        if (typeof a === "function" || this.#closed) {
          this.#free.push(slot);
          if (typeof a === "function") a();
          else a.job.onEnd("cancelled");
        } else this.#active.set(slot, a);
        if (this.#closed) return;
      }
      // 2. every generating sequence samples its next token; those that go on form one batch
      const rows: { slot: number; token: number; pos: number }[] = [];
      for (const [slot, a] of [...this.#active]) {
        let reason: FinishReason | null;
        try {
          reason = this.#advance(a);
        } catch (e) {
          this.#release(slot);
          a.job.onEnd("error", e);
          continue;
        }
        if (reason) {
          this.#release(slot);
          a.job.onEnd(reason);
        } else rows.push({ slot, token: a.token, pos: a.pos++ });
      }
      // 3. one forward for all of them
      if (rows.length > 0) {
        try {
          const out = await this.engine.evalBatch(rows);
          this.#steps++;
          this.#rows += rows.length;
          rows.forEach((r, i) => {
            const a = this.#active.get(r.slot);
            if (a) a.logits = out[i];
          });
        } catch (e) {
          for (const r of rows) {
            const a = this.#active.get(r.slot);
            this.#release(r.slot);
            a?.job.onEnd("error", e);
          }
        }
      }
      await yieldToEventLoop();
    }
  }
}
