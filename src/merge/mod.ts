/**
 * merge: PEFT LoRA adapters merged into LLaMA base weights, streaming — open any base layout (HF, Meta pth,
 * GGUF, llama2.c), check it against the LoRAs (planMerge), compute row blocks (MergeExecutor) and write GGUF,
 * Hugging Face or Meta pth outputs; plus the seeded tiny-model generator used by tests, benches and the demo.
 *
 * @example
 * ```ts
 * import { BytesSink } from "../core/byte_source.ts";
 * import { ggufOutput, MergeExecutor, planMerge, tinyTensor, tinyConfig } from "./mod.ts";
 * import { canonicalOrder, tensorKey } from "./mod.ts";
 * const spec = { dim: 32, hiddenDim: 96, nLayers: 1, nHeads: 2, vocabSize: 40 };
 * const tensors = new Map(canonicalOrder(1).map(({ kind, layer }) => [tensorKey(kind, layer), tinyTensor(spec, kind, layer)]));
 * const plan = planMerge({ label: "tiny", format: "meta", layout: "meta", config: tinyConfig(spec), tensors }, []);
 * const [file] = ggufOutput(plan, new MergeExecutor(plan), "Q8_0");
 * const sink = new BytesSink();
 * await file.write(sink); // a GGUF (no vocabulary) of the generated model
 * ```
 * @module
 */
export { checkFileHash, type ChecksumList, parseChecksumList } from "./checksums.ts";
export { encodeF32, REF_QUANTIZERS, type RowQuantizers, tensorBytes, tensorColumnBytes } from "./encode.ts";
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
export { type ModelFs, openBase, type OpenedBase, type OpenedLora, openLora } from "./open.ts";
export { permuteMetaToHf, permuteRows, type RopeLayout, ropeRowMap, unpermuteHfToMeta } from "./permute.ts";
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
export {
  SPEC_7B,
  tinyConfig,
  type TinyFile,
  tinyGgufFiles,
  tinyHfFiles,
  tinyLoraFiles,
  type TinyLoraSpec,
  tinyLoraTensors,
  tinyMetaFiles,
  type TinyModelSpec,
  tinyTensor,
} from "./tiny_model.ts";
export { INITIALIZER_RANGE, initNewRow } from "./vocab_resize.ts";
export { ggufOutput, huggingfaceOutput, type OutputFile, type OutputTokenizer, pthOutput } from "./write.ts";
