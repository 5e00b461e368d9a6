/**
 * The model: LLaMA config and tensor names, the f32 reference forward pass (llama.ts), and the fast sharded engine
 * on the WASM kernels (engine.ts) with the one-shot generate() loop; random models for tests and benchmarks.
 *
 * @example
 * ```ts ignore
 * import { generate, loadEngine } from "./mod.ts";
 * const engine = await loadEngine("model-q4_0.gguf", { threads: 2, contextSize: 512 });
 * const ids = engine.tokenizer.encode("Once upon a time", { bos: true });
 * const sampler = { sample: (logits: Float32Array) => logits.indexOf(Math.max(...logits)) }; // or a Sampler
 * const r = await generate(engine, sampler, ids, { maxTokens: 32 });
 * console.log(engine.tokenizer.decode(r.ids));
 * engine.close();
 * ```
 * @module
 */
export * from "./config.ts";
export * from "./tensor_names.ts";
export { dequantizeToF32, expectedShape, type ModelFile, TensorTable } from "./weights.ts";
export { LlamaReference, type LlamaWeightsF32, loadWeightsF32, type ReferenceNumerics } from "./llama.ts";
export {
  type BatchRow,
  createEngine,
  type Engine,
  type EngineBase,
  type EngineModel,
  type EngineOptions,
  loadEngine,
  loadEngineFromBytes,
  loadEngineFromSource,
  type ModelPlace,
} from "./engine.ts";
export { generate, type GenerateOptions, type GenerateResult, type TokenPicker } from "./generate.ts";
export { ggufSpecFromLlama2c, type Llama2cFile, type Llama2cToGgufOptions, readLlama2c } from "./llama2c_gguf.ts";
export { loadEngineFromBlob } from "./browser_engine.ts";
