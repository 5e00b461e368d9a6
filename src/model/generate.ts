/**
 * generate(): the one-shot completion loop on an engine — the prompt in batches, then sample → evaluate one token at
 * a time until maxTokens, a stop token, or the end of the context.
 * see: llama.cpp examples/main/main.cpp (the loop), engine.ts
 */
import { UserError } from "../core/errors.ts";

/** What generate() needs from an engine. */
export interface GenerateEngine {
  readonly contextSize: number;
  readonly tokenizer: { readonly eosId: number };
  eval(tokens: number[], startPos: number): Promise<Float32Array>;
}

/** Options of generate(). */
export interface GenerateOptions {
  /** Most tokens to generate. */
  maxTokens: number;
  /** Called with each generated token id (after it is chosen, before it is evaluated). */
  onToken?: (id: number) => void;
  /** Stop (without emitting it) when one of these ids is sampled. Default: the tokenizer's EOS. */
  stopAt?: number[];
}

/** Something that picks the next token from logits (the project's Sampler). */
export interface TokenPicker {
  sample(logits: Float32Array): number;
  accept?(tokens: Iterable<number>): void;
}

/** Timings of a generate() call. */
export interface GenerateResult {
  ids: number[];
  promptMs: number;
  generateMs: number;
  /** Why it stopped. */
  stop: "eos" | "length" | "context";
}

/**
 * The completion loop: evaluates the prompt in batches, then samples and evaluates one token at a time until
 * maxTokens, a stop token, or the end of the context.
 */
export async function generate(
  engine: GenerateEngine,
  sampler: TokenPicker,
  promptIds: number[],
  options: GenerateOptions,
): Promise<GenerateResult> {
  if (promptIds.length === 0) throw new RangeError("Cannot generate: the prompt has no tokens");
  if (promptIds.length >= engine.contextSize) {
    throw new UserError(
      `Cannot generate: the prompt has ${promptIds.length} tokens, the context holds ${engine.contextSize}`,
      "shorten the prompt or raise -c",
    );
  }
  const eos = engine.tokenizer.eosId;
  const stops = new Set(options.stopAt ?? (eos !== undefined && eos >= 0 ? [eos] : []));
  sampler.accept?.(promptIds);
  let t0 = performance.now();
  let logits = await engine.eval(promptIds, 0);
  const promptMs = performance.now() - t0;
  t0 = performance.now();
  const ids: number[] = [];
  let pos = promptIds.length;
  let stop: GenerateResult["stop"] = "length";
  while (ids.length < options.maxTokens) {
    const id = sampler.sample(logits);
    if (stops.has(id)) {
      stop = "eos";
      break;
    }
    ids.push(id);
    options.onToken?.(id);
    if (ids.length >= options.maxTokens) break;
    if (pos >= engine.contextSize) {
      stop = "context";
      break;
    }
    logits = await engine.eval([id], pos++);
  }
  return { ids, promptMs, generateMs: performance.now() - t0, stop };
}
