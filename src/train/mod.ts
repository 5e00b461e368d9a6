/**
 * Training in TypeScript over the WASM kernel boundary: the LLaMA training forward/backward (model.ts), LoRA and
 * frozen base weights (lora.ts), AdamW and clipping (optimizer.ts), transformers' LR schedules (schedule.ts) and
 * the Trainer that ties them together (trainer.ts). The API the pretrain/sft commands call is described in
 * trainer.ts; data packing and the PEFT writer live beside it.
 *
 * @example
 * ```ts
 * import { lrLambda, warmupSteps } from "./mod.ts";
 * const warmup = warmupSteps(100, 0.05); // ceil(100·0.05) = 5, as transformers
 * lrLambda("cosine", 5, warmup, 100); // 1 at the end of warmup
 * ```
 * @module
 */
export {
  kaimingUniformA,
  Linear,
  LORA_TARGETS,
  type LoraOptions,
  type LoraTarget,
  type LoraWeights,
  Param,
  TrainRng,
  validateLoraOptions,
} from "./lora.ts";
export { checkBatch, IGNORE_INDEX, type TrainBatch, type TrainLayer, TrainModel, type TrainWeights } from "./model.ts";
export { AdamW, type AdamWOptions, clipGradNorm, zeroGrads } from "./optimizer.ts";
export { lrLambda, SCHEDULE_TYPES, type ScheduleType, warmupSteps } from "./schedule.ts";
export {
  checkOptions,
  type FrozenAllocator,
  type NamedTensor,
  type SavedModule,
  type StepResult,
  type TrainBase,
  trainBaseFromF32,
  trainBaseFromTable,
  Trainer,
  type TrainerState,
  type TrainMode,
  type TrainOptions,
} from "./trainer.ts";
export {
  ALPACA_PROMPT_TEMPLATE,
  ALPACA_SFT_CHAT_TEMPLATE,
  alpacaPrompt,
  type AlpacaRecord,
  buildSftDataset,
  buildSftExample,
  concatPackedBlocks,
  type DataCursor,
  DataOrder,
  type DataSplit,
  type DataTokenizer,
  GROUP_TEXTS_BATCH,
  MAX_DATA_BYTES,
  MAX_FIELD_CHARS,
  MAX_RECORDS,
  MAX_SEQ_LENGTH,
  type PackedBlocks,
  packPretrainBlocks,
  readAlpacaRecords,
  readPretrainTexts,
  seededPermutation,
  type SftDataset,
  type SftExample,
  splitTrainValidation,
  validationFraction,
} from "./data.ts";
export {
  type Checkpoint,
  CHECKPOINT_MAGIC,
  checkpointSize,
  type CheckpointTensor,
  MAX_HEADER_BYTES,
  readCheckpoint,
  writeCheckpoint,
} from "./checkpoint.ts";
export {
  ADAPTER_BIN_FILE,
  ADAPTER_CONFIG_FILE,
  ADAPTER_SAFETENSORS_FILE,
  type AdapterFile,
  type AdapterSettings,
  type AdapterTensor,
  checkAdapterKey,
  PEFT_KEY_PREFIX,
  type PeftAdapter,
  peftAdapterConfig,
  peftAdapterFiles,
  type PeftWriteOptions,
} from "./peft_adapter.ts";
export { LOSS_CSV_HEADER, lossCsv, lossCsvRow, type LossRow, lossSvg, type LossSvgOptions } from "./loss_log.ts";
export {
  type FrozenStoreStats,
  STREAMED_KINDS,
  type StreamedBaseOptions,
  type StreamedTrainBase,
  streamedTrainBase,
} from "./frozen_store.ts";
