/**
 * Sampling: a seeded Mersenne Twister and the llama.cpp-order sampler (repeat penalty, top-k, top-p, temperature).
 *
 * @example
 * ```ts
 * import { Sampler } from "./mod.ts";
 * const sampler = new Sampler({ temperature: 0.8, topK: 40, topP: 0.95, repeatPenalty: 1.1, seed: 1 });
 * const id = sampler.sample(new Float32Array([1, 2, 3]));
 * ```
 */
export { Mt19937 } from "../core/mt19937.ts";
export * from "./sampler.ts";
