/**
 * `sft`: the seed's instruction fine-tuning (run_clm_sft_with_peft.py) — Stanford Alpaca records with the seed's
 * prompt template, loss only on the response (prompt labels -100), EOS after each response, LoRA (+ modules_to_save)
 * on a base that may first get earlier adapters merged in (`--lora-model`: LLaMA-Plus, then train Alpaca-Plus).
 * see: the seed's scripts/training/run_sft.sh, build_dataset.py; src/train/data.ts, src/commands/_train_run.ts
 */
import { UsageError, UserError } from "../core/errors.ts";
import {
  buildSftDataset,
  IGNORE_INDEX,
  MAX_DATA_BYTES,
  readAlpacaRecords,
  type SftExample,
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

const USAGE = `usage: deno task sft --base-model M [--lora-model A,…] --data alpaca.json --output-dir DIR [options]

Instruction fine-tuning as the seed's run_sft.sh: each Alpaca record (instruction, input, output) becomes
  <s>Below is an instruction that describes a task. Write a response that appropriately completes the
  request.\\n\\n### Instruction:\\n{instruction[\\n input]}\\n\\n### Response: {output}</s>
with the loss taken on the response and EOS only. LoRA on --trainable layers, plus --modules-to-save.
Data: a JSON array of records, JSON lines, or a folder of .json/.jsonl files. Output: a PEFT folder, loss.csv and loss.svg;
\`deno task merge --base-model M --lora-model A,…,DIR\` gives the trained model.

  --lora-model DIRS           PEFT folders merged into the base first, in order (e.g. the LLaMA-Plus LoRA)
  --max-seq-length N          tokens per example, prompt + response, truncated (default 512)
  --validation-file FILE      held-out Alpaca records (the seed's --validation_file); else a split of --data
${TRAIN_FLAGS_HELP}

Defaults follow run_sft.sh: --learning-rate 1e-4, --warmup-ratio 0.03, --weight-decay 0, cosine.
Progress (step, loss, lr, tok/s, ETA) goes to stderr; Ctrl+C saves a checkpoint (resume with --resume).`;

/** Alpaca files in a --data folder. */
const ALPACA_FILES = /\.(json|jsonl)$/i;

/** Right-pads examples into one batch: pad ids where the sequence ended, labels IGNORE_INDEX there. */
function padBatch(examples: SftExample[], padId: number) {
  const seqLen = Math.max(...examples.map((e) => e.inputIds.length));
  const tokens = new Int32Array(examples.length * seqLen).fill(padId);
  const labels = new Int32Array(examples.length * seqLen).fill(IGNORE_INDEX);
  examples.forEach((e, i) => {
    tokens.set(e.inputIds, i * seqLen);
    labels.set(e.labels, i * seqLen);
  });
  return { batch: examples.length, seqLen, tokens, labels };
}

/** Entry point. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...TRAIN_FLAGS,
    "lora-model": { type: "string" },
    "max-seq-length": { type: "string" },
    "validation-file": { type: "string" },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const flags = parseTrainFlags(values, { learningRate: 1e-4, warmupRatio: 0.03, weightDecay: 0 });
  const maxSeqLength = intFlag(values["max-seq-length"], "--max-seq-length", 512, 2);
  const loraModels = (values["lora-model"] ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  await dropUnneededPermissions();
  const files = listDataFiles(flags.data, MAX_DATA_BYTES, ALPACA_FILES);
  const validationFile = values["validation-file"];
  if (validationFile !== undefined) readDataFile(validationFile, MAX_DATA_BYTES); // fail early on a bad path
  const opened = await openTrainBase(flags.baseModel, loraModels, flags.tokenizer);
  const records = files.flatMap((f) => readAlpacaRecords(f, readDataFile(f, MAX_DATA_BYTES)));
  const texts = records.map((r) => r.instruction + r.input + r.output);
  const bar = tokenizeProgress(texts);
  const ds = buildSftDataset(records, opened.tokenizer, maxSeqLength, bar.onProgress);
  bar.finish();
  const skipped = (n: number, what: string) => {
    if (n > 0) {
      console.error(
        `warning: ${n} ${what} record(s) skipped: their prompt alone fills --max-seq-length ${maxSeqLength}`,
      );
    }
  };
  skipped(ds.nSkipped, "training");
  let trainExamples: SftExample[], evalExamples: SftExample[];
  if (validationFile !== undefined) {
    // the seed's run_sft.sh --validation_file: held-out records from their own file, no split
    const v = buildSftDataset(
      readAlpacaRecords(validationFile, readDataFile(validationFile, MAX_DATA_BYTES)),
      opened.tokenizer,
      maxSeqLength,
    );
    skipped(v.nSkipped, "validation");
    trainExamples = ds.examples;
    evalExamples = v.examples;
  } else {
    if (ds.examples.length < 2) {
      throw new UserError(
        `Cannot train: "${flags.data}" gives ${ds.examples.length} usable example(s)`,
        "training and validation need at least one example each (or pass --validation-file)",
      );
    }
    const split = splitTrainValidation(ds.examples.length, validationFraction(flags.validation), flags.seed);
    trainExamples = [...split.train].map((i) => ds.examples[i]);
    evalExamples = [...split.validation].map((i) => ds.examples[i]);
  }
  if (trainExamples.length === 0) {
    throw new UserError(`Cannot train: "${flags.data}" gives no usable example`, "check --data and --max-seq-length");
  }
  const nHeldOut = evalExamples.length;
  evalExamples = evalExamples.slice(0, flags.maxEvalSamples);
  const tok = opened.tokenizer;
  const padId = tok.padId >= 0 ? tok.padId : tok.eosId >= 0 ? tok.eosId : 0;
  const data: TrainData = {
    nTrain: trainExamples.length,
    nEval: evalExamples.length,
    trainBatch: (indices) => padBatch(indices.map((i) => trainExamples[i]), padId),
    evalBatches: (n) => {
      const out = [];
      for (let i = 0; i < evalExamples.length; i += n) out.push(padBatch(evalExamples.slice(i, i + n), padId));
      return out;
    },
    fingerprint: fingerprintOf([
      ...trainExamples.flatMap((e) => [e.inputIds, e.labels]),
      new Int32Array([-1]),
      ...evalExamples.flatMap((e) => [e.inputIds, e.labels]),
    ]),
    summary: `data: ${files.length} file(s), ${records.length} records, ${ds.nTokens} tokens; ` +
      `${trainExamples.length} train, ${nHeldOut} held out` +
      (evalExamples.length < nHeldOut ? ` (${evalExamples.length} evaluated)` : ""),
  };
  if (data.nEval === 0) console.error("warning: no held-out examples: no held-out loss is reported");
  return await runTraining({
    command: "sft",
    mode: "lora",
    flags,
    opened,
    data,
    identity: { maxSeqLength, loraModels, validationFile: validationFile ?? null, ...identityOf(flags) },
    baseName: loraModels.length ? `${flags.baseModel} + ${loraModels.join(" + ")}` : flags.baseModel,
  });
}
