/**
 * `pretrain`: the seed's pre-training (run_clm_pt_with_peft.py) — stage 1 trains only the embeddings and lm_head
 * (the transformer frozen), stage 2 adds LoRA on the chosen linear layers — on text packed into --block-size
 * blocks as run_clm does, writing a PEFT folder that `merge` consumes.
 * see: the seed's scripts/training/run_pt.sh, src/train/data.ts, src/commands/_train_run.ts
 */
import { UsageError, UserError } from "../core/errors.ts";
import {
  concatPackedBlocks,
  MAX_DATA_BYTES,
  packPretrainBlocks,
  readPretrainTexts,
  splitTrainValidation,
  validationFraction,
} from "../train/data.ts";
import { intFlag, parseFlags } from "./_args.ts";
import {
  dropUnneededPermissions,
  fingerprintOf,
  identityOf,
  listDataFiles,
  openTrainBase,
  parseTrainFlags,
  readDataFile,
  runTraining,
  tokenizeProgress,
  TRAIN_FLAGS,
  TRAIN_FLAGS_HELP,
  type TrainData,
} from "./_train_run.ts";

const USAGE = `usage: deno task pretrain --base-model M --data D --stage 1|2 --output-dir DIR [options]

Pre-trains as the seed's run_pt.sh: --stage 1 trains only embed_tokens/lm_head (every transformer weight stays
bit-identical), --stage 2 adds LoRA (r, alpha, dropout) on --trainable layers, trained with the embeddings.
Data: a .txt file (each line one text, as datasets' text loader), a .jsonl with a "text" field per line, or a
folder of them (packed file by file, as the seed's --dataset_dir); each text gets BOS, texts are concatenated
in groups of 1,000 and cut into --block-size blocks (remainders dropped).
Output: a PEFT folder (adapter_config.json, adapter_model.bin/.safetensors, tokenizer.model), loss.csv and
loss.svg; \`deno task merge --base-model M --lora-model DIR\` gives the trained model.

  --stage 1|2                 1: embeddings + lm_head only; 2: LoRA + --modules-to-save
  --block-size N              tokens per block (default 512)
${TRAIN_FLAGS_HELP}

Defaults follow run_pt.sh: --learning-rate 2e-4, --warmup-ratio 0.05, --weight-decay 0.01, cosine.
Progress (step, loss, lr, tok/s, ETA) goes to stderr; Ctrl+C saves a checkpoint (resume with --resume).`;

/** Entry point. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...TRAIN_FLAGS,
    stage: { type: "string" },
    "block-size": { type: "string" },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const stage = values.stage;
  if (stage !== "1" && stage !== "2") throw new UsageError(`--stage must be 1 or 2, got "${stage ?? ""}"`);
  const flags = parseTrainFlags(values, { learningRate: 2e-4, warmupRatio: 0.05, weightDecay: 0.01 });
  const blockSize = intFlag(values["block-size"], "--block-size", 512, 2);
  await dropUnneededPermissions();
  const files = listDataFiles(flags.data, MAX_DATA_BYTES);
  const opened = await openTrainBase(flags.baseModel, [], flags.tokenizer);
  if (blockSize > opened.base.config.contextLength) {
    console.error(
      `warning: --block-size ${blockSize} exceeds the model's context length ${opened.base.config.contextLength}`,
    );
  }
  let nTexts = 0;
  const packed = concatPackedBlocks(files.map((file) => {
    const texts = readPretrainTexts(file, readDataFile(file, MAX_DATA_BYTES));
    nTexts += texts.length;
    const bar = tokenizeProgress(texts);
    const packed = packPretrainBlocks(texts, opened.tokenizer, blockSize, bar.onProgress);
    bar.finish();
    return packed;
  }));
  if (packed.nBlocks < 2) {
    throw new UserError(
      `Cannot train: "${flags.data}" gives ${packed.nBlocks} block(s) of ${blockSize} tokens (${packed.nTokens} tokens)`,
      "use more text or a smaller --block-size (training and validation need at least one block each)",
    );
  }
  const split = splitTrainValidation(packed.nBlocks, validationFraction(flags.validation), flags.seed);
  const block = (i: number) => packed.tokens.subarray(i * blockSize, (i + 1) * blockSize);
  const evalIdx = split.validation.slice(0, flags.maxEvalSamples);
  const batchOf = (idx: ArrayLike<number>) => {
    const tokens = new Int32Array(idx.length * blockSize);
    for (let i = 0; i < idx.length; i++) tokens.set(block(idx[i]), i * blockSize);
    return { batch: idx.length, seqLen: blockSize, tokens, labels: tokens.slice() };
  };
  const data: TrainData = {
    nTrain: split.train.length,
    nEval: evalIdx.length,
    trainBatch: (indices) => batchOf(indices.map((i) => split.train[i])),
    evalBatches: (n) => {
      const out = [];
      for (let i = 0; i < evalIdx.length; i += n) out.push(batchOf(evalIdx.subarray(i, i + n)));
      return out;
    },
    fingerprint: fingerprintOf([packed.tokens, new Int32Array(split.train.buffer)]),
    summary:
      `data: ${files.length} file(s), ${nTexts} texts, ${packed.nTokens} tokens → ${packed.nBlocks} blocks of ${blockSize} ` +
      `(${packed.nDropped} tokens dropped); ${split.train.length} train, ${split.validation.length} held out` +
      (evalIdx.length < split.validation.length ? ` (${evalIdx.length} evaluated)` : ""),
  };
  if (data.nEval === 0) {
    console.error("warning: no held-out blocks (--validation-split-percentage 0): no held-out loss is reported");
  }
  return await runTraining({
    command: "pretrain",
    mode: stage === "1" ? "stage1" : "lora",
    flags,
    opened,
    data,
    identity: { stage, blockSize, ...identityOf(flags) },
    baseName: flags.baseModel,
  });
}
