/**
 * Per-request token choice: OpenAI's presence and frequency penalties on top of the project's Sampler (repeat
 * penalty → top-k → top-p → temperature), and the log-probabilities the API reports.
 * Penalties look at the same window as the repeat penalty (the last repeat_last_n tokens of prompt + reply), as
 * llama.cpp's penalties sampler does; logprobs are the model's own distribution (log-softmax of the raw logits).
 * see: src/sampling/sampler.ts, llama.cpp src/llama-sampling.cpp (penalties), OpenAI API reference (logprobs)
 */
import { Sampler, topK } from "../sampling/sampler.ts";
import type { GenerationParams } from "./request_params.ts";

/** A token and its log-probability. */
export interface TokenLogprob {
  id: number;
  logprob: number;
}

/** Chooses the tokens of one request. */
export class RequestSampler {
  readonly sampler: Sampler;
  readonly seed: number;
  readonly #presence: number;
  readonly #frequency: number;

  constructor(params: GenerationParams, seed: number, prompt: number[]) {
    this.seed = seed;
    this.sampler = new Sampler({
      temperature: params.temperature,
      topK: params.topK,
      topP: params.topP,
      repeatPenalty: params.repeatPenalty,
      repeatLastN: params.repeatLastN,
      seed: seed >>> 0, // the Mersenne Twister takes 32 bits
    });
    this.#presence = params.presencePenalty;
    this.#frequency = params.frequencyPenalty;
    this.sampler.accept(prompt);
  }

  /** Picks the next token from `logits` (not modified) and remembers it. */
  sample(logits: Float32Array): number {
    if (this.#presence === 0 && this.#frequency === 0) return this.sampler.sample(logits);
    const l = logits.slice();
    const counts = new Map<number, number>();
    for (const t of this.sampler.recent) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, n] of counts) {
      if (t >= 0 && t < l.length) l[t] -= n * this.#frequency + this.#presence;
    }
    return this.sampler.sample(l);
  }
}

/** log-softmax of `logits` at `id`, and the `top` most likely tokens (f64 sums; max subtracted). */
export function logprobsOf(
  logits: Float32Array,
  id: number,
  top: number,
): { chosen: TokenLogprob; top: TokenLogprob[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);
  const chosen = { id, logprob: logits[id] - logZ };
  const best = top > 0
    ? topK(logits, Math.min(top, logits.length)).map((c) => ({ id: c.id, logprob: c.logit - logZ }))
    : [];
  return { chosen, top: best };
}
