/**
 * The Deno side of the model pipelines, shared by the merge, convert, quantize and demo commands: path checks,
 * checksums, progress bars and atomic writes around src/merge/pipeline.ts (openMerge, openConvert, quantizeGguf).
 */
import { createHash } from "node:crypto";
import { UserError } from "../core/errors.ts";
import { yieldToEventLoop } from "../core/event_loop.ts";
import { FileSource } from "../io/mod.ts";
import { checkFileHash, parseChecksumList } from "../merge/checksums.ts";
import { loadQuantizers } from "../merge/encode.ts";
import {
  type ConvertOptions as ConvertJobOptions,
  type MergeOptions as MergeJobOptions,
  openConvert,
  openMerge,
  quantizeGguf,
} from "../merge/pipeline.ts";
import type { QuantTarget } from "../quant/quantize_plan.ts";
import {
  checkDiskSpace,
  checkInputPath,
  checkOutputDir,
  checkOutputFile,
  denoModelFs,
  prepareOutputDir,
  writeFileInterruptible,
  writeOutputFiles,
} from "./_model_fs.ts";
import { Progress } from "./_progress.ts";
import { vocabReader } from "./_tokenizer_bridge.ts";

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
export interface MergeOptions extends Omit<MergeJobOptions, "vocab"> {
  outputDir: string;
  sha256?: string;
  force?: boolean;
}

/** What `merge()` wrote. */
export interface MergeResult {
  files: string[];
  vocabSize: number;
  inputBytes: number;
  seconds: number;
  warnings: string[];
}

/**
 * The command's merge: checks the paths, runs src/merge/pipeline.ts openMerge, verifies checksums, and writes the
 * outputs into `outputDir` atomically with a progress bar; throws UserError (with a hint) before writing.
 */
export async function merge(o: MergeOptions): Promise<MergeResult> {
  // every path named before any work, with the flag that gave it
  checkInputPath(o.baseModel, "any", "--base-model");
  for (const p of o.loraModels) checkInputPath(p, "dir", "--lora-model");
  if (o.tokenizer !== undefined) checkInputPath(o.tokenizer, "file", "--tokenizer");
  if (o.sha256 !== undefined) checkInputPath(o.sha256, "file", "--sha256");
  checkOutputDir(o.outputDir);
  const job = await openMerge(denoModelFs, { ...o, vocab: vocabReader });
  const warn = (m: string) => {
    job.warnings.push(m);
    o.onWarning?.(m);
  };
  try {
    if (o.sha256) verifySha256(o.sha256, job.inputFiles).forEach(warn);
    const bar = new Progress("merge", job.inputBytes);
    const files = await job.outputs({ onInputBytes: (n) => bar.add(n), beforeTensor: yieldToEventLoop });
    prepareOutputDir(o.outputDir, o.force ?? false);
    const need = files.reduce((s, f) => s + (f.nBytes ?? 0), 0);
    const diskWarning = checkDiskSpace(o.outputDir, need);
    if (diskWarning) warn(diskWarning);
    const t0 = performance.now();
    await writeOutputFiles(o.outputDir, files);
    bar.finish();
    return {
      files: files.map((f) => f.path),
      vocabSize: job.plan.config.vocabSize,
      inputBytes: job.inputBytes,
      seconds: (performance.now() - t0) / 1000,
      warnings: job.warnings,
    };
  } finally {
    job.close();
  }
}

/** Options of convertToGguf. */
export interface ConvertOptions extends Omit<ConvertJobOptions, "vocab"> {
  force?: boolean;
}

/**
 * The command's convert: checks the paths, runs src/merge/pipeline.ts openConvert and writes `output` atomically
 * with a progress bar; returns bytes read and written and seconds.
 */
export async function convertToGguf(
  input: string,
  output: string,
  o: ConvertOptions = {},
): Promise<{ inputBytes: number; outputBytes: number; seconds: number }> {
  checkInputPath(input, "any", "IN");
  if (o.tokenizer !== undefined) checkInputPath(o.tokenizer, "file", "--tokenizer");
  checkOutputFile(output, o.force ?? false);
  const job = openConvert(denoModelFs, input, { ...o, vocab: vocabReader });
  try {
    const bar = new Progress("convert", job.inputBytes);
    const file = await job.output({ onInputBytes: (n) => bar.add(n), beforeTensor: yieldToEventLoop });
    const dir = output.includes("/") ? output.slice(0, output.lastIndexOf("/")) || "/" : ".";
    const warning = checkDiskSpace(dir, file.nBytes ?? 0);
    if (warning) console.error(`warning: ${warning}`);
    const t0 = performance.now();
    const { nBytes } = await writeFileInterruptible(output, async (sink) => await file.write(sink));
    bar.finish();
    return { inputBytes: job.inputBytes, outputBytes: nBytes, seconds: (performance.now() - t0) / 1000 };
  } finally {
    job.close();
  }
}

/**
 * The command's quantize: checks the paths and free space, runs src/merge/pipeline.ts quantizeGguf with the WASM
 * quantizers into `outPath` atomically (Ctrl+C removes the temp file) with a progress bar.
 */
export async function quantizeFile(
  inPath: string,
  outPath: string,
  target: QuantTarget,
  o: { allowRequantize?: boolean; force?: boolean; threads?: number } = {},
): Promise<{ tensors: number; types: string; inputBytes: number; outputBytes: number; seconds: number }> {
  checkInputPath(inPath, "file", "IN.gguf");
  checkOutputFile(outPath, o.force ?? false);
  using src = new FileSource(inPath);
  const outDir = outPath.includes("/") ? outPath.slice(0, outPath.lastIndexOf("/")) || "/" : ".";
  const ratio = target === "Q4_0" ? 18 / 64 : target === "Q8_0" ? 34 / 64 : target === "F16" ? 0.5 : 1;
  const warning = checkDiskSpace(outDir, src.size * ratio * 2);
  if (warning) console.error(`warning: ${warning}`);
  const bar = new Progress("quantize", src.size);
  const t0 = performance.now();
  const { result: r, nBytes } = await writeFileInterruptible(outPath, async (sink) =>
    quantizeGguf(src, sink, target, {
      allowRequantize: o.allowRequantize,
      quantizers: await loadQuantizers(),
      onInputBytes: (n) => bar.add(n),
      beforeTensor: yieldToEventLoop,
      threads: o.threads,
    }));
  bar.finish();
  const types = [...r.types].map(([t, n]) => `${n} ${t}`).join(", ");
  return {
    tensors: r.tensors,
    types,
    inputBytes: src.size,
    outputBytes: nBytes,
    seconds: (performance.now() - t0) / 1000,
  };
}
