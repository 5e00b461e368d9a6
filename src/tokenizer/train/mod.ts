/**
 * tokenizer/train: SentencePiece training with spm_train 0.1.97's rules — BPE, UNIGRAM, CHAR and WORD models whose
 * `.model` bytes equal spm_train's (BPE always; unigram on the tested corpora), from the same flags.
 * Stages: SentenceSelector (input, seeded sampling) → prepareCorpus (normalize, alphabet, words) → trainer → bytes.
 *
 * @example
 * ```ts ignore
 * import { defaultTrainerOptions, SentenceSelector, trainerConfig, trainSentencePiece } from "./mod.ts";
 * const options = { ...defaultTrainerOptions(), model_type: "bpe", vocab_size: 8000, model_prefix: "m" };
 * const selector = new SentenceSelector(trainerConfig(options));
 * for (const line of lines) selector.add(line, new TextEncoder().encode(line).length);
 * const { modelBytes, vocabText } = await trainSentencePiece(selector, options);
 * ```
 */
export * from "./trainer_spec.ts";
export { decodeLine, SentenceSelector } from "./corpus.ts";
export { charsmapFor, formatFloat, type TrainProgress, type TrainResult, trainSentencePiece } from "./trainer.ts";
