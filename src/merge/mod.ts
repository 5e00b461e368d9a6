/**
 * merge: PEFT LoRA adapters merged into LLaMA base weights, streaming — open any base layout (HF, Meta pth,
 * GGUF, llama2.c), check it against the LoRAs (planMerge), compute row blocks (MergeExecutor) and write GGUF,
 * Hugging Face or Meta pth outputs. (Generators of tiny models for tests live in fixtures/, not here.)
 *
 * @example
 * ```ts
 * import { BytesSink } from "../core/byte_source.ts";
 * import { expectedShape } from "../model/tensor_names.ts";
 * import { canonicalOrder, ggufOutput, MergeExecutor, planMerge, sourceTensorFromF32, tensorKey } from "./mod.ts";
 * const config = { dim: 32, hiddenDim: 96, nLayers: 1, nHeads: 2, nKvHeads: 2, headSize: 16, vocabSize: 40,
 *   contextLength: 64, normEps: 1e-6, ropeTheta: 10000 };
 * const tensors = new Map(canonicalOrder(1).map(({ kind, layer }) => {
 *   const shape = expectedShape(config, kind);
 *   const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01);
 *   return [tensorKey(kind, layer), sourceTensorFromF32(kind, shape, values)];
 * }));
 * const plan = planMerge({ label: "tiny", format: "meta", layout: "meta", config, tensors }, []);
 * const [file] = ggufOutput(plan, new MergeExecutor(plan), "Q8_0");
 * const sink = new BytesSink();
 * await file.write(sink); // a GGUF (no vocabulary) of a constant model
 * ```
 * @module
 */
export { checkFileHash, type ChecksumList, parseChecksumList } from "./checksums.ts";
export {
  encodeF32,
  loadQuantizers,
  REF_QUANTIZERS,
  type RowQuantizers,
  tensorBytes,
  tensorColumnBytes,
} from "./encode.ts";
export {
  isTargeted,
  type LoraAdapter,
  loraAdapterFromTensors,
  type LoraConfig,
  type LoraPair,
  parseAdapterConfig,
  parseLoraKey,
  tensorKey,
} from "./lora.ts";
export {
  metaParamsFor,
  metaShardCount,
  type MetaShardOf,
  metaShardOf,
  type MetaSplit,
  metaSplit,
} from "./meta_shards.ts";
export { memoryModelFs, type ModelFs, openBase, type OpenedBase, type OpenedLora, openLora } from "./open.ts";
export {
  type ConvertJob,
  type ConvertOptions,
  type MergeJob,
  type MergeOptions,
  openConvert,
  openMerge,
  type PipelineProgress,
  quantizeGguf,
  type QuantizeOptions,
  type VocabReader,
  vocabTokenCount,
} from "./pipeline.ts";
export { MergePool, poolSizeFor } from "./pool.ts";
export {
  permuteMetaToHf,
  permuteRows,
  type RopeLayout,
  ropeRowMap,
  unpermuteHfToMeta,
} from "../formats/rope_permute.ts";
export {
  addLoraDelta,
  type BaseCheckpoint,
  canonicalOrder,
  finishRows,
  MergeExecutor,
  type MergePlan,
  planMerge,
  type PlannedTensor,
} from "./plan.ts";
export { concatSourceTensors, type SourceTensor, sourceTensorFromF32, sourceTensorFromInfo } from "./source_tensor.ts";
export { INITIALIZER_RANGE, initNewRow } from "./vocab_resize.ts";
export { ggufOutput, huggingfaceOutput, type OutputFile, type OutputTokenizer, pthOutput } from "./write.ts";
