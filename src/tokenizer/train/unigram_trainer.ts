/**
 * UNIGRAM trainer (in progress).
 */
import { UnsupportedError } from "../../core/errors.ts";
import type { ScoredPiece } from "./bpe_trainer.ts";
import type { TrainerConfig } from "./trainer_spec.ts";
import type { TrainProgress } from "./trainer.ts";

export interface UnigramTrainInput {
  texts: string[];
  freqs: number[];
  requiredChars: Map<number, number>;
  vocabSize: number;
  cfg: TrainerConfig;
  isValid: (cps: ArrayLike<number>) => boolean;
  onProgress?: TrainProgress;
}

export function trainUnigram(_input: UnigramTrainInput): Promise<ScoredPiece[]> {
  return Promise.reject(new UnsupportedError("Cannot train: unigram is not implemented yet"));
}
