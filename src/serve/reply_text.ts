/**
 * ReplyText: the tokens of one reply → the text a client sees, as it streams: the streaming decoder (a Chinese
 * character split over byte tokens comes out whole, never half), then the stop-string filter (a stop string and
 * any beginning of one are held back and never sent), plus each token's log-probabilities when asked.
 * see: src/tokenizer/streaming_decoder.ts, src/chat/stop_filter.ts
 */
import { StopStringFilter } from "../chat/stop_filter.ts";
import { StreamingDecoder, type Tokenizer } from "../tokenizer/mod.ts";
import { pieceToByte } from "../tokenizer/vocab.ts";
import { logprobsOf } from "./request_sampler.ts";

/** One position's log-probabilities in OpenAI's chat shape. */
export interface LogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

const utf8 = new TextEncoder();
const lenient = new TextDecoder();

/** The text one token stands for on its own (a byte token: its byte) as OpenAI reports it: string and bytes. */
export function tokenSurface(tokenizer: Tokenizer, id: number): { token: string; bytes: number[] } {
  const piece = tokenizer.pieceOf(id);
  const rid = tokenizer.vocab.pieceToId(piece);
  if (tokenizer.vocab.isByte(rid)) {
    const b = pieceToByte(piece);
    return { token: lenient.decode(Uint8Array.of(b)), bytes: [b] };
  }
  if (tokenizer.vocab.isControl(rid)) return { token: "", bytes: [] };
  const token = piece.replaceAll("\u2581", " ");
  return { token, bytes: [...utf8.encode(token)] };
}

/** Options of a ReplyText. */
export interface ReplyTextOptions {
  stop: readonly string[];
  /** Keep the first piece's leading space (a completion continues its prompt); false drops it, as decode(). */
  continuation: boolean;
  logprobs: boolean;
  topLogprobs: number;
}

/** Streams one reply's text. */
export class ReplyText {
  readonly tokenizer: Tokenizer;
  readonly #decoder: StreamingDecoder;
  readonly #filter: StopStringFilter;
  readonly #options: ReplyTextOptions;
  #text = "";
  #pending: LogprobEntry[] = [];
  readonly #all: LogprobEntry[] = [];

  constructor(tokenizer: Tokenizer, options: ReplyTextOptions) {
    this.tokenizer = tokenizer;
    this.#options = options;
    this.#decoder = new StreamingDecoder(tokenizer, { continuation: options.continuation });
    this.#filter = new StopStringFilter(options.stop);
  }

  /** Everything sent so far. */
  get text(): string {
    return this.#text;
  }

  /** True once a stop string appeared. */
  get stopped(): boolean {
    return this.#filter.stopped;
  }

  /** Every logprob entry of the reply. */
  get logprobs(): readonly LogprobEntry[] {
    return this.#all;
  }

  /** Adds a sampled token; returns the text that may be sent now (possibly ""). */
  push(id: number, logits: Float32Array): string {
    if (this.#options.logprobs) {
      const lp = logprobsOf(logits, id, this.#options.topLogprobs);
      const entry: LogprobEntry = {
        ...tokenSurface(this.tokenizer, id),
        logprob: lp.chosen.logprob,
        top_logprobs: lp.top.map((t) => ({ ...tokenSurface(this.tokenizer, t.id), logprob: t.logprob })),
      };
      this.#pending.push(entry);
      this.#all.push(entry);
    }
    return this.#emit(this.#filter.push(this.#decoder.push(id)).text);
  }

  /** Ends the reply: the held-back text (an incomplete character, a stop string's beginning that never finished). */
  finish(): string {
    let t = "";
    if (!this.#filter.stopped) t = this.#filter.push(this.#decoder.flush()).text;
    return this.#emit(t + this.#filter.flush());
  }

  /** Log-prob entries not handed out yet (sent with the next chunk). */
  takeLogprobs(): LogprobEntry[] {
    const p = this.#pending;
    this.#pending = [];
    return p;
  }

  #emit(t: string): string {
    this.#text += t;
    return t;
  }
}
