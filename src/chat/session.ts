/**
 * ChatSession: a multi-turn conversation over an Engine — the template's preamble stays in the context for ever,
 * each reply streams through a streaming decoder and a stop-string filter, and when the context fills the oldest
 * half of everything after the preamble is dropped and the kept tokens are evaluated again (llama.cpp's context
 * swap: n_keep = preamble, keep the most recent (n_past - n_keep) / 2 tokens).
 * see: llama.cpp examples/main/main.cpp @ 3525899 ("infinite text generation via context swapping")
 */
import { Sampler, type SamplerOptions } from "../sampling/sampler.ts";
import { ALPACA, type ChatTemplate, type TemplateTokenizer } from "./templates.ts";
import { StopStringFilter } from "./stop_filter.ts";
import { Tokenizer } from "../tokenizer/mod.ts";
import { chatTokenizer, replyDecoder } from "./chat_tokenizer.ts";
import { yieldToEventLoop } from "../core/event_loop.ts";

/** What a session needs from a tokenizer (the project's `Tokenizer` satisfies it). */
export interface ChatTokenizer extends TemplateTokenizer {
  decode(ids: number[]): string;
}

/** Turns token ids into printable text as they arrive (the tokenizer's `StreamingDecoder`). */
export interface TokenTextDecoder {
  /** Text that became printable with `id` (whole characters only; may be ""). */
  push(id: number): string;
  /** Whatever is still held back (an incomplete UTF-8 sequence, rendered as the decoder renders it). */
  flush(): string;
}

/** What a session needs from an engine (the project's `Engine` satisfies it). */
export interface ChatEngine {
  readonly contextSize: number;
  readonly tokenizer: ChatTokenizer;
  /** Evaluates `tokens` at positions startPos…; returns the logits after the last one. */
  eval(tokens: number[], startPos: number): Promise<Float32Array>;
}

/** Session settings. */
export interface ChatSessionOptions {
  /** Default: alpaca. */
  template?: ChatTemplate;
  /** Preamble text (the prompt file); default: the template's. */
  system?: string;
  /** Most tokens per reply (llama.cpp `-n`); negative = until EOS, a stop string or Ctrl+C. Default 256. */
  maxNewTokens?: number;
  /** A sampler, or options for a new one. */
  sampler?: Sampler | SamplerOptions;
  /** Most tokens per engine.eval call while reading input. Default 64. */
  batchSize?: number;
  /** Never sample EOS (llama.cpp `--ignore-eos`): replies end at -n, a stop string or Ctrl+C. */
  ignoreEos?: boolean;
  /** Makes the streaming decoder for one reply; default: the tokenizer's StreamingDecoder (required for fakes). */
  createDecoder?: (tokenizer: ChatTokenizer) => TokenTextDecoder;
}

/**
 * How often (ms) a reply yields to the event loop. An engine whose eval() finishes synchronously (one thread)
 * would otherwise starve the event loop, and Ctrl+C (a SIGINT listener) could not stop the reply.
 */
const YIELD_EVERY_MS = 30;

/** Why a reply ended. */
export type StopReason = "eos" | "stop-string" | "length" | "interrupted";

/** One finished (or interrupted) reply. */
export interface ChatReply {
  /** Exactly the text passed to `onText`, concatenated. */
  text: string;
  /** Sampled token ids, EOS and tokens of a stop string included. */
  tokenIds: number[];
  stopReason: StopReason;
  /** Tokens evaluated for the user turn (re-evaluations after a context shift included). */
  nPromptTokens: number;
  promptMs: number;
  /** Tokens sampled. */
  nGenerated: number;
  generateMs: number;
}

/** Counters since the session started. */
export interface ChatStats {
  turns: number;
  /** Tokens evaluated while reading user turns (re-evaluations after a shift included). */
  promptTokens: number;
  promptMs: number;
  generatedTokens: number;
  generateMs: number;
  /** Every token evaluated: preamble, turns, sampled tokens, re-evaluations after shifts. */
  evaluatedTokens: number;
  /** How many times the context was shifted. */
  contextShifts: number;
}

/** Options of one call to respond(). */
export interface RespondOptions {
  /** Receives the reply's printable text as it streams. */
  onText?: (text: string) => void;
  /** Stops the reply (Ctrl+C): the text so far stays in the context, as in llama.cpp. */
  signal?: AbortSignal;
}

/**
 * A conversation. The KV cache holds `contextTokens[0 … evaluated)`; tokens after that are queued (the last
 * sampled token, EOS, or a turn not finished because of an interrupt) and are evaluated with the next input.
 *
 * @example
 * ```ts ignore
 * const session = new ChatSession(engine, { createDecoder: (t) => new StreamingDecoder(t) });
 * const reply = await session.respond("用一句话介绍北京", { onText: (s) => out.write(s) });
 * ```
 */
export class ChatSession {
  readonly engine: ChatEngine;
  /** The tokenizer the templates use (the project's Tokenizer gets the no-dummy-prefix encoding, chatTokenizer()). */
  readonly tokenizer: ChatTokenizer;
  readonly template: ChatTemplate;
  readonly system: string;
  readonly maxNewTokens: number;
  readonly sampler: Sampler;
  readonly batchSize: number;
  readonly ignoreEos: boolean;
  readonly #createDecoder: (tokenizer: ChatTokenizer) => TokenTextDecoder;
  readonly #preamble: number[];
  #tokens: number[];
  #evaluated = 0;
  #logits: Float32Array | null = null;
  #turn = 0;
  #lastYield = 0;
  #stats: ChatStats = {
    turns: 0,
    promptTokens: 0,
    promptMs: 0,
    generatedTokens: 0,
    generateMs: 0,
    evaluatedTokens: 0,
    contextShifts: 0,
  };

  constructor(engine: ChatEngine, options: ChatSessionOptions) {
    this.engine = engine;
    this.template = options.template ?? ALPACA;
    this.system = options.system ?? this.template.defaultSystem;
    this.maxNewTokens = options.maxNewTokens ?? 256;
    this.sampler = options.sampler instanceof Sampler ? options.sampler : new Sampler(options.sampler ?? {});
    this.ignoreEos = options.ignoreEos ?? false;
    const tok = engine.tokenizer;
    this.tokenizer = tok instanceof Tokenizer ? chatTokenizer(tok) : tok;
    if (options.createDecoder) this.#createDecoder = options.createDecoder;
    else if (tok instanceof Tokenizer) this.#createDecoder = () => replyDecoder(tok);
    else throw new TypeError("Cannot start chat: createDecoder is required for a tokenizer that is not a Tokenizer");
    this.#preamble = this.template.preamble(this.tokenizer, this.system);
    const ctx = engine.contextSize;
    // llama.cpp refused prompts longer than n_ctx - 4; a turn needs room after the preamble
    if (this.#preamble.length > ctx - 4) {
      throw new RangeError(
        `Cannot start chat: the preamble is ${this.#preamble.length} tokens but the context holds ${ctx} (need ≤ ${
          ctx - 4
        })`,
      );
    }
    const batch = options.batchSize ?? 64;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`Cannot start chat: batchSize ${batch} < 1`);
    // after a shift we evaluate up to (n_left / 2) + batch tokens from n_keep: batch ≤ (ctx - n_keep) / 2 fits
    this.batchSize = Math.max(1, Math.min(batch, Math.floor((ctx - this.#preamble.length) / 2)));
    this.#tokens = [...this.#preamble];
    this.sampler.accept(this.#preamble);
  }

  /** The tokens kept for ever (llama.cpp's n_keep). */
  get preambleTokens(): readonly number[] {
    return this.#preamble;
  }

  /** The conversation as the model sees it: preamble, then the most recent turns and replies. */
  get contextTokens(): readonly number[] {
    return this.#tokens;
  }

  /** How many of `contextTokens` are in the engine's KV cache (positions 0 … evaluated-1). */
  get evaluated(): number {
    return this.#evaluated;
  }

  /** Counters since the session started. */
  get stats(): Readonly<ChatStats> {
    return this.#stats;
  }

  /** Evaluates the preamble now (otherwise the first respond() does it). */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#evaluated >= this.#tokens.length) return;
    const t0 = performance.now();
    const before = this.#stats.evaluatedTokens;
    await this.#sync(signal);
    this.#stats.promptTokens += this.#stats.evaluatedTokens - before;
    this.#stats.promptMs += performance.now() - t0;
  }

  /** Forgets the conversation but keeps the preamble (already in the KV cache, so it is not evaluated again). */
  reset(): void {
    this.#tokens = [...this.#preamble];
    this.#evaluated = Math.min(this.#evaluated, this.#preamble.length);
    this.#logits = null;
    this.#turn = 0;
    this.sampler.reset();
    this.sampler.accept(this.#preamble);
  }

  /** Adds the user's turn and streams the model's reply. */
  async respond(user: string, options: RespondOptions = {}): Promise<ChatReply> {
    const { onText, signal } = options;
    const tok = this.tokenizer;
    const turn = this.template.turn(tok, user, this.#turn++);
    this.#stats.turns++;
    this.#tokens.push(...turn);
    this.sampler.accept(turn);

    const reply: ChatReply = {
      text: "",
      tokenIds: [],
      stopReason: "interrupted",
      nPromptTokens: 0,
      promptMs: 0,
      nGenerated: 0,
      generateMs: 0,
    };
    const emit = (s: string) => {
      if (s === "") return;
      reply.text += s;
      onText?.(s);
    };

    const t0 = performance.now();
    const before = this.#stats.evaluatedTokens;
    let logits = await this.#sync(signal);
    reply.promptMs = performance.now() - t0;
    reply.nPromptTokens = this.#stats.evaluatedTokens - before;
    this.#stats.promptTokens += reply.nPromptTokens;
    this.#stats.promptMs += reply.promptMs;
    if (logits === null) return reply;

    const t1 = performance.now();
    const decoder = this.#createDecoder(this.engine.tokenizer);
    const filter = new StopStringFilter(this.template.stopStrings);
    // rawEnd[i]: decoded length after generated token i; shown[i]: token i completed some text
    const rawEnd: number[] = [];
    const shown: boolean[] = [];
    let raw = 0;
    let stop: StopReason = "length";
    while (this.maxNewTokens < 0 || reply.tokenIds.length < this.maxNewTokens) {
      if (this.ignoreEos) {
        logits = logits.slice();
        logits[tok.eosId] = -Infinity;
      }
      const id = this.sampler.sample(logits);
      reply.tokenIds.push(id);
      this.#tokens.push(id);
      if (id === tok.eosId) {
        stop = "eos"; // EOS stays in the context (evaluated with the next turn), as llama.cpp -ins did
        break;
      }
      const piece = decoder.push(id);
      raw += piece.length;
      rawEnd.push(raw);
      shown.push(piece.length > 0);
      const chunk = filter.push(piece);
      emit(chunk.text);
      if (chunk.stopped) {
        stop = "stop-string";
        this.#dropStopString(filter.emittedLength, rawEnd, shown);
        break;
      }
      if (signal?.aborted) {
        stop = "interrupted";
        break;
      }
      const next = await this.#sync(signal);
      if (next === null) {
        stop = "interrupted";
        break;
      }
      logits = next;
    }
    if (stop !== "stop-string") {
      emit(filter.push(decoder.flush()).text);
      emit(filter.flush());
    }
    reply.stopReason = stop;
    reply.nGenerated = reply.tokenIds.length;
    reply.generateMs = performance.now() - t1;
    this.#stats.generatedTokens += reply.nGenerated;
    this.#stats.generateMs += reply.generateMs;
    return reply;
  }

  /**
   * Removes the stop string's tokens from the context: keeps generated tokens up to the last one that completed
   * text lying wholly before the stop string, so the next turn's own prefix follows cleanly. The dropped tokens
   * are the newest ones, always at the end of the context (a shift only removes older tokens).
   */
  #dropStopString(visible: number, rawEnd: number[], shown: boolean[]): void {
    let keep = 0;
    for (let i = 0; i < rawEnd.length; i++) if (shown[i] && rawEnd[i] <= visible) keep = i + 1;
    const drop = Math.min(rawEnd.length - keep, this.#tokens.length - this.#preamble.length);
    this.#tokens.length -= drop;
    if (this.#evaluated > this.#tokens.length) this.#evaluated = this.#tokens.length;
    this.#logits = null;
  }

  /**
   * Evaluates every queued token, shifting the context when it would overflow; returns the logits after the last
   * token, or null when `signal` fired between batches (what was evaluated stays evaluated).
   */
  async #sync(signal?: AbortSignal): Promise<Float32Array | null> {
    const ctx = this.engine.contextSize;
    const nKeep = this.#preamble.length;
    while (this.#evaluated < this.#tokens.length) {
      if (performance.now() - this.#lastYield > YIELD_EVERY_MS) {
        await yieldToEventLoop();
        this.#lastYield = performance.now();
      }
      if (signal?.aborted) return null;
      let n = Math.min(this.batchSize, this.#tokens.length - this.#evaluated);
      if (this.#evaluated + n > ctx) {
        // llama.cpp: n_left = n_past - n_keep; keep the last n_left/2 tokens before the new ones, n_past = n_keep,
        // and evaluate the kept tokens again together with the new batch
        const nLeft = this.#evaluated - nKeep;
        const kept = Math.floor(nLeft / 2);
        this.#tokens.splice(nKeep, nLeft - kept);
        this.#evaluated = nKeep;
        n += kept;
        this.#stats.contextShifts++;
      }
      const start = this.#evaluated;
      this.#logits = await this.engine.eval(this.#tokens.slice(start, start + n), start);
      this.#evaluated = start + n;
      this.#stats.evaluatedTokens += n;
    }
    return this.#logits;
  }
}
