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
  type LoraPair,
  type LoraTarget,
  Param,
  TrainRng,
  validateLoraOptions,
} from "./lora.ts";
export {
  checkBatch,
  crossEntropyBackward,
  crossEntropyForward,
  IGNORE_INDEX,
  rmsNormBackward,
  rmsNormForward,
  ropeForward,
  type TrainBatch,
  type TrainLayer,
  TrainModel,
  type TrainWeights,
} from "./model.ts";
export { AdamW, type AdamWOptions, clipGradNorm, zeroGrads } from "./optimizer.ts";
export { lrLambda, SCHEDULE_TYPES, type ScheduleType, warmupSteps } from "./schedule.ts";
export {
  checkOptions,
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
