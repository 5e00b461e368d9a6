/**
 * `merge`: base LLaMA weights + Chinese LoRA(s) → GGUF (optionally quantized) / Hugging Face / Meta pth, in one
 * streaming pass. Flags mirror the seed's merge_llama_with_chinese_lora.py (--base-model, --lora-model,
 * --output-type, --output-dir); see src/merge/plan.ts for the semantics.
 */
import { createHash } from "node:crypto";
import { UsageError, UserError } from "../core/errors.ts";
import { ggufKvsOf } from "../formats/gguf_writer.ts";
import { FileSource } from "../io/mod.ts";
import { checkFileHash, parseChecksumList } from "../merge/checksums.ts";
import { REF_QUANTIZERS, type RowQuantizers } from "../merge/encode.ts";
import { openBase, type OpenedBase, type OpenedLora, openLora } from "../merge/open.ts";
import { checkTokenizerFits, MergeExecutor, planMerge } from "../merge/plan.ts";
import { ggufOutput, huggingfaceOutput, type OutputFile, type OutputTokenizer, pthOutput } from "../merge/write.ts";
import { parseQuantTarget, type QuantTarget } from "../quant/quantize_plan.ts";
import { intFlag, parseFlags } from "./_args.ts";
import {
  checkDiskSpace,
  checkInputPath,
  checkOutputDir,
  denoModelFs,
  prepareOutputDir,
  writeOutputFiles,
  yieldToEventLoop,
} from "./_model_fs.ts";
import { formatBytes, formatDuration, Progress } from "./_progress.ts";
import { ggufVocabFromModel, sentencePieceCount, vocabTokenCount } from "./_tokenizer_bridge.ts";
import { MergePool, poolSizeFor } from "./_merge_pool.ts";

const USAGE = `usage: deno task merge --base-model PATH --lora-model DIR[,DIR…] --output-dir DIR [options]

Merges LLaMA base weights with one or more PEFT LoRAs (applied in the order given, e.g. LLaMA-Plus then
Alpaca-Plus) and writes the result, streaming one tensor at a time.

  --base-model PATH     HF folder (config.json + safetensors/.bin), Meta folder (params.json +
                        consolidated.*.pth), GGUF file (F32/F16/BF16) or llama2.c .bin
  --lora-model DIRS     comma-separated PEFT folders (adapter_config.json, adapter_model.bin|.safetensors,
                        tokenizer.model)
  --output-type TYPE    gguf (default) | huggingface | pth
  --output-dir DIR      where to write (must be empty unless --force)
  --quant TYPE          gguf only: f16 (default) | f32 | q8_0 | q4_0
  --tokenizer FILE      tokenizer.model for the output (default: the last LoRA's)
  --sha256 FILE         verify every input file against SHA256.md (the seed's) or sha256sum output first
  --shards N            pth only: number of consolidated.0N.pth (default by size: 7B 1, 13B 2, 33B 4, 65B 8)
  --max-shard-size GB   huggingface only: safetensors shard size (default 5)
  -t, --threads N       threads: the main thread reads, N-1 workers compute (default 1; on a busy 2-core
                        machine the workers measured slower, see bench/README.md)
  --force               write into a non-empty --output-dir
  -h, --help            show this help

Before writing, merge checks the inputs against each other (tokenizer vs embedding rows, LoRA shapes, layers,
target modules) and the free space of --output-dir (statfs: --allow-sys=statfs, granted by the task). Outputs
appear only when complete; Ctrl+C removes the partial files.`;

/** Loads the WASM row quantizers (byte-identical to the references); the references when WASM is unavailable. */
export async function loadQuantizers(): Promise<RowQuantizers> {
  try {
    const { loadWasmKernels } = await import("../kernels/mod.ts");
    const k = await loadWasmKernels();
    return { Q4_0: (x, out) => k.quantizeRowQ4_0(x, out), Q8_0: (x, out) => k.quantizeRowQ8_0(x, out) };
  } catch {
    return REF_QUANTIZERS;
  }
}

/** Hashes files streaming with a progress bar; throws UserError on a mismatch. Returns warnings. */
export function verifySha256(listPath: string, files: string[]): string[] {
  const list = parseChecksumList(Deno.readTextFileSync(listPath));
  const warnings: string[] = [];
  const total = files.reduce((s, f) => s + Deno.statSync(f).size, 0);
  const bar = new Progress("sha256", total);
  const buf = new Uint8Array(8 << 20);
  for (const f of files) {
    const h = createHash("sha256");
    using src = new FileSource(f);
    for (let off = 0; off < src.size; off += buf.length) {
      const n = Math.min(buf.length, src.size - off);
      src.readInto(off, buf.subarray(0, n));
      h.update(buf.subarray(0, n));
      bar.add(n);
    }
    const hex = h.digest("hex");
    const v = checkFileHash(list, f, hex);
    if (v.ok) continue;
    if (v.reason === "mismatch") {
      throw new UserError(
        `Cannot merge: sha256 of "${f}" is ${hex}, but "${listPath}" lists ${v.expected}`,
        "the file is damaged or incomplete: download it again",
      );
    }
    const covered = /(consolidated\.\d+\.pth|pytorch_model.*\.bin|adapter_model\.bin|tokenizer\.model)$/.test(f);
    if (list.format === "markdown" && covered) {
      throw new UserError(
        `Cannot merge: sha256 of "${f}" (${hex}) is not in "${listPath}"`,
        "the file is damaged, or not one of the official files the list covers: download it again",
      );
    }
    if (/\.(pth|bin|safetensors|gguf|model)$/.test(f)) warnings.push(`"${f}" is not in "${listPath}" (not verified)`);
  }
  bar.finish();
  return warnings;
}

/** What `merge()` does: the CLI flags, parsed. */
export interface MergeOptions {
  baseModel: string;
  loraModels: string[];
  outputType: "gguf" | "huggingface" | "pth";
  outputDir: string;
  quant?: QuantTarget;
  tokenizer?: string;
  sha256?: string;
  shards?: number;
  maxShardBytes?: number;
  force?: boolean;
  /** Threads (the main thread + threads-1 workers); default 1 (no workers). */
  threads?: number;
  /** Library use only (tests): allow a GGUF without tokenizer.ggml.* KVs (llama.cpp cannot load it). */
  allowNoTokenizer?: boolean;
  /** Receives warnings as they arise (they are also returned). */
  onWarning?: (message: string) => void;
}

/** What `merge()` wrote. */
export interface MergeResult {
  files: string[];
  vocabSize: number;
  inputBytes: number;
  seconds: number;
  warnings: string[];
}

/** Opens, checks, merges and writes; throws UserError (with a hint) for every problem found before writing. */
export async function merge(o: MergeOptions): Promise<MergeResult> {
  const fs = denoModelFs;
  const opened: { close(): void }[] = [];
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    o.onWarning?.(m);
  };
  // every path named before any work, with the flag that gave it
  checkInputPath(o.baseModel, "any", "--base-model");
  for (const p of o.loraModels) checkInputPath(p, "dir", "--lora-model");
  if (o.tokenizer !== undefined) checkInputPath(o.tokenizer, "file", "--tokenizer");
  if (o.sha256 !== undefined) checkInputPath(o.sha256, "file", "--sha256");
  checkOutputDir(o.outputDir);
  const target = o.quant ?? "F16";
  const outputType = o.outputType;
  let base: OpenedBase | undefined;
  let pool: MergePool | undefined;
  try {
    // 1. open everything (headers only) and check before any heavy work
    base = openBase(fs, o.baseModel);
    const loras: OpenedLora[] = [];
    for (const p of o.loraModels) {
      loras.push(
        await openLora(fs, p, opened, { tokenizerSize: (b) => sentencePieceCount(b, `${p}/tokenizer.model`) }),
      );
    }
    const tokPath = o.tokenizer ?? loras.at(-1)?.tokenizerPath ?? base.tokenizerPath;
    const tokBytes = tokPath ? Deno.readFileSync(tokPath) : undefined;
    const plan = planMerge(base, loras, {
      tokenizerSize: o.tokenizer && tokBytes ? sentencePieceCount(tokBytes, o.tokenizer) : undefined,
    });
    plan.warnings.forEach(warn);
    if (o.sha256) {
      const files = [...base.files, ...loras.flatMap((l) => l.files), ...(o.tokenizer ? [o.tokenizer] : [])];
      verifySha256(o.sha256, files).forEach(warn);
    }
    // 2. the tokenizer for the output
    const tokenizer: OutputTokenizer = {};
    if (tokBytes) {
      tokenizer.modelBytes = tokBytes;
      if (outputType === "gguf") tokenizer.ggufKvs = ggufVocabFromModel(tokBytes, tokPath!);
      const dir = tokPath!.slice(0, tokPath!.lastIndexOf("/") + 1);
      tokenizer.extraFiles = ["special_tokens_map.json", "tokenizer_config.json"]
        .filter((n) => fs.kind(dir + n) === "file")
        .map((n) => ({ path: n, bytes: Deno.readFileSync(dir + n) }));
    } else if (outputType === "gguf" && base.gguf) {
      tokenizer.ggufKvs = ggufKvsOf(base.gguf).filter((kv) => kv.key.startsWith("tokenizer."));
    }
    if (outputType === "gguf" && !tokenizer.ggufKvs?.length && !o.allowNoTokenizer) {
      throw new UserError(
        "Cannot write GGUF: no tokenizer found (the LoRA folders and the base have no tokenizer.model)",
        "pass --tokenizer path/to/tokenizer.model (llama.cpp needs the vocabulary inside the GGUF)",
      );
    }
    const nTokens = vocabTokenCount(tokenizer.ggufKvs);
    if (nTokens !== undefined) {
      checkTokenizerFits(nTokens, plan.config.vocabSize, `Cannot write GGUF: tokenizer "${tokPath ?? o.baseModel}"`);
    }
    // 3. outputs
    prepareOutputDir(o.outputDir, o.force ?? false);
    const quantizers = await loadQuantizers();
    const exec = new MergeExecutor(plan);
    const workers = poolSizeFor(o.threads ?? 1);
    pool = workers > 0 ? new MergePool(workers) : undefined;
    const totalElements = plan.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    const inputBytes = base.inputBytes + loras.reduce((s, l) => s + l.inputBytes, 0);
    const passes = outputType === "pth" ? (o.shards ?? 1) : 1;
    const bar = new Progress("merge", inputBytes);
    const perElement = inputBytes / totalElements / passes;
    const common = {
      quantizers,
      tokenizer,
      onElements: (n: number) => bar.add(n * perElement),
      name: "yangtuo merge",
      beforeTensor: yieldToEventLoop,
      tensorBytes: pool ? pool.tensorBytes.bind(pool) : undefined,
    };
    const dtype = target === "F32" ? "F32" : "F16";
    const files: OutputFile[] = outputType === "gguf"
      ? ggufOutput(plan, exec, target, { ...common, fileName: `ggml-model-${target.toLowerCase()}.gguf` })
      : outputType === "huggingface"
      ? huggingfaceOutput(plan, exec, { ...common, maxShardBytes: o.maxShardBytes, dtype })
      : pthOutput(plan, exec, { ...common, shards: o.shards, dtype });
    const need = files.reduce((s, f) => s + (f.nBytes ?? 0), 0);
    const diskWarning = checkDiskSpace(o.outputDir, need);
    if (diskWarning) warn(diskWarning);
    const t0 = performance.now();
    await writeOutputFiles(o.outputDir, files);
    bar.finish();
    return {
      files: files.map((f) => f.path),
      vocabSize: plan.config.vocabSize,
      inputBytes,
      seconds: (performance.now() - t0) / 1000,
      warnings,
    };
  } finally {
    pool?.close();
    base?.close();
    opened.forEach((f) => f.close());
  }
}

/** Entry point. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    "base-model": { type: "string" },
    "lora-model": { type: "string" },
    "output-type": { type: "string", default: "gguf" },
    "output-dir": { type: "string" },
    quant: { type: "string" },
    tokenizer: { type: "string" },
    sha256: { type: "string" },
    shards: { type: "string" },
    "max-shard-size": { type: "string" },
    threads: { type: "string", short: "t" },
    force: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const baseModel = values["base-model"], outputDir = values["output-dir"];
  if (!baseModel) throw new UsageError("--base-model is required");
  if (!outputDir) throw new UsageError("--output-dir is required");
  const loraModels = (values["lora-model"] ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (loraModels.length === 0) throw new UsageError("--lora-model is required (comma-separated for several)");
  const outputType = values["output-type"];
  if (outputType !== "gguf" && outputType !== "huggingface" && outputType !== "pth") {
    throw new UsageError(`--output-type must be gguf, huggingface or pth, got "${outputType}"`);
  }
  let quant: QuantTarget | undefined;
  if (values.quant !== undefined) {
    quant = parseQuantTarget(values.quant);
    if (!quant) throw new UsageError(`--quant must be f16, f32, q8_0 or q4_0, got "${values.quant}"`);
    if (outputType !== "gguf" && quant !== "F16" && quant !== "F32") {
      throw new UsageError(`--quant ${values.quant} needs --output-type gguf (huggingface and pth hold f16/f32)`);
    }
  }
  const shards = values.shards === undefined ? undefined : intFlag(values.shards, "--shards", 1, 1);
  const maxShardGb = values["max-shard-size"] === undefined ? 5 : Number(values["max-shard-size"]);
  if (!(maxShardGb > 0)) throw new UsageError(`--max-shard-size expects a positive number of GB`);
  const r = await merge({
    baseModel,
    loraModels,
    outputType,
    outputDir,
    quant,
    tokenizer: values.tokenizer,
    sha256: values.sha256,
    shards,
    maxShardBytes: maxShardGb * 1e9,
    force: values.force,
    threads: values.threads === undefined ? undefined : intFlag(values.threads, "--threads", 1, 1),
    onWarning: (m) => console.error(`warning: ${m}`),
  });
  console.log(
    `merged ${loraModels.length} LoRA(s) into ${outputDir}: ${r.files.join(", ")} (vocab ${r.vocabSize}, ` +
      `${formatBytes(r.inputBytes)} read in ${formatDuration(r.seconds)}, ` +
      `${formatBytes(r.inputBytes / Math.max(r.seconds, 1e-3))}/s)`,
  );
  return 0;
}
