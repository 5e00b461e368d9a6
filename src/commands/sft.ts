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
  openTrainBase,
  parseTrainFlags,
  readDataFile,
  runTraining,
  TRAIN_FLAGS,
  TRAIN_FLAGS_HELP,
  type TrainData,
} from "./_train_run.ts";

const USAGE = `usage: deno task sft --base-model M [--lora-model A,…] --data alpaca.json --output-dir DIR [options]

Instruction fine-tuning as the seed's run_sft.sh: each Alpaca record (instruction, input, output) becomes
  <s>Below is an instruction that describes a task. Write a response that appropriately completes the
  request.\\n\\n### Instruction:\\n{instruction[\\n input]}\\n\\n### Response: {output}</s>
with the loss taken on the response and EOS only. LoRA on --trainable layers, plus --modules-to-save.
Data: a JSON array of records, or JSON lines. Output: a PEFT folder, loss.csv and loss.svg;
\`deno task merge --base-model M --lora-model A,…,DIR\` gives the trained model.

  --lora-model DIRS           PEFT folders merged into the base first, in order (e.g. the LLaMA-Plus LoRA)
  --max-seq-length N          tokens per example, prompt + response, truncated (default 512)
${TRAIN_FLAGS_HELP}

Defaults follow run_sft.sh: --learning-rate 1e-4, --warmup-ratio 0.03, --weight-decay 0, cosine.
Progress (step, loss, lr, tok/s, ETA) goes to stderr; Ctrl+C saves a checkpoint (resume with --resume).`;

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
  const bytes = readDataFile(flags.data, MAX_DATA_BYTES);
  const opened = await openTrainBase(flags.baseModel, loraModels, flags.tokenizer);
  const records = readAlpacaRecords(flags.data, bytes);
  const ds = buildSftDataset(records, opened.tokenizer, maxSeqLength);
  if (ds.nSkipped > 0) {
    console.error(
      `warning: ${ds.nSkipped} record(s) skipped: their prompt alone fills --max-seq-length ${maxSeqLength}`,
    );
  }
  if (ds.examples.length < 2) {
    throw new UserError(
      `Cannot train: "${flags.data}" gives ${ds.examples.length} usable example(s)`,
      "training and validation need at least one example each",
    );
  }
  const split = splitTrainValidation(ds.examples.length, validationFraction(flags.validation), flags.seed);
  const evalIdx = split.validation.slice(0, flags.maxEvalSamples);
  const tok = opened.tokenizer;
  const padId = tok.padId >= 0 ? tok.padId : tok.eosId >= 0 ? tok.eosId : 0;
  const data: TrainData = {
    nTrain: split.train.length,
    nEval: evalIdx.length,
    trainBatch: (indices) => padBatch(indices.map((i) => ds.examples[split.train[i]]), padId),
    evalBatches: (n) => {
      const out = [];
      for (let i = 0; i < evalIdx.length; i += n) {
        out.push(padBatch([...evalIdx.subarray(i, i + n)].map((j) => ds.examples[j]), padId));
      }
      return out;
    },
    fingerprint: fingerprintOf([
      ...ds.examples.flatMap((e) => [e.inputIds, e.labels]),
      new Int32Array(split.train.buffer),
    ]),
    summary: `data: ${records.length} records, ${ds.nTokens} tokens; ${split.train.length} train, ` +
      `${split.validation.length} held out` +
      (evalIdx.length < split.validation.length ? ` (${evalIdx.length} evaluated)` : ""),
  };
  return await runTraining({
    command: "sft",
    mode: "lora",
    flags,
    opened,
    data,
    identity: { maxSeqLength, loraModels, ...identityOf(flags) },
    baseName: loraModels.length ? `${flags.baseModel} + ${loraModels.join(" + ")}` : flags.baseModel,
  });
}
