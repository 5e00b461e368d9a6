/**
 * Loading a model for the commands that run one (generate, perplexity, chat, serve): the shared engine flags
 * (-m, -t, -c, --tokenizer, --reference), run settings checked against memory, and the engine itself.
 */
import { FormatError, UserError } from "../core/errors.ts";
import { BytesSink, BytesSource } from "../core/byte_source.ts";
import { readGguf } from "../formats/gguf.ts";
import { writeGguf } from "../formats/gguf_writer.ts";
import { checkTokenizerFits } from "../merge/plan.ts";
import { configFromGgufMetadata, type LlamaConfig } from "../model/config.ts";
import { FileSource } from "../io/file_source.ts";
import { type Engine, type EngineOptions, loadEngine, loadEngineFromBytes } from "../model/engine.ts";
import { ggufSpecFromLlama2c } from "../model/llama2c_gguf.ts";
import { resolveContextSize, resolveThreads, type SamplingSettings } from "./_sampling_flags.ts";
import { loadTokenizerFile } from "./_tokenizer_loader.ts";
import { progressEnabled } from "./_progress.ts";
import { tensorName } from "../model/tensor_names.ts";

/** Options shared by generate, perplexity and chat for loading a model. */
export interface ModelLoadFlags {
  model: string;
  tokenizer?: string;
  /** -c and -t as parsed by the shared option table (resolved against the model here). */
  settings: Pick<SamplingSettings, "contextSize" | "defaultContextSize" | "threads">;
  useReference?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Warnings and notes (default: `warning: …` on stderr). */
  warn?: (message: string) => void;
}

/** Cores this process may use (navigator.hardwareConcurrency; 1 when unknown). */
export function availableCores(): number {
  const n = typeof navigator !== "undefined" ? navigator.hardwareConcurrency : 1;
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** Total memory in bytes when the task may ask (--allow-sys=systemMemoryInfo), else undefined. */
function totalMemory(): number | undefined {
  try {
    return Deno.systemMemoryInfo().total;
  } catch {
    return undefined;
  }
}

/**
 * -c and -t against the model: context = -c or min(default, context_length) (warning beyond context_length), and
 * refused when its KV cache alone exceeds the machine's memory; threads capped at the cores and at the model's KV
 * heads (the unit the engine splits attention by).
 */
export function resolveRunSettings(
  config: LlamaConfig,
  s: ModelLoadFlags["settings"],
  warn: (message: string) => void,
  cores = availableCores(),
  memory = totalMemory(),
): { contextSize: number; threads: number } {
  const contextSize = resolveContextSize(s, config.contextLength, warn);
  const kvBytes = 2 * config.nLayers * contextSize * config.nKvHeads * config.headSize * 2; // K and V, f16
  if (memory !== undefined && kvBytes > memory) {
    throw new UserError(
      `Cannot use a context of ${contextSize} tokens: its KV cache alone needs ${
        (kvBytes / 2 ** 30).toFixed(1)
      } GiB, ` +
        `this machine has ${(memory / 2 ** 30).toFixed(1)} GiB`,
      "use a smaller -c",
    );
  }
  return { contextSize, threads: resolveThreads(s.threads, cores, config.nKvHeads, warn) };
}

/** Loads a GGUF or (with a tokenizer.model) a llama2.c checkpoint. */
export async function openEngine(flags: ModelLoadFlags): Promise<Engine> {
  const path = flags.model;
  const warn = flags.warn ?? ((m: string) => console.error(`warning: ${m}`));
  let head: Uint8Array;
  let size: number;
  try {
    using src = new FileSource(path);
    size = src.size;
    head = src.read(0, Math.min(4, size));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot open model "${path}": file not found`, "check the path given with -m");
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new UserError(`Cannot open model "${path}": it is a folder`, "pass the .gguf file inside it");
    }
    throw e;
  }
  const options = (config: LlamaConfig): EngineOptions => {
    const r = resolveRunSettings(config, flags.settings, warn);
    return {
      contextSize: r.contextSize,
      threads: r.threads,
      useReference: flags.useReference,
      onProgress: flags.onProgress,
    };
  };
  const isGguf = size >= 4 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46;
  if (isGguf) {
    let config: LlamaConfig;
    try {
      using src = new FileSource(path);
      const g = readGguf(src);
      config = configFromGgufMetadata(
        g.metadata,
        g.tensors.find((t) => t.name === tensorName("gguf", "tok_embd"))?.shape[0],
      );
    } catch (e) {
      if (e instanceof FormatError || e instanceof RangeError) {
        throw new UserError(`Cannot load model "${path}": ${e.message}`, "the file is damaged or not a LLaMA model");
      }
      throw e;
    }
    return await withHint(loadEngine(path, options(config)));
  }
  // not GGUF: try llama2.c
  if (!flags.tokenizer) {
    throw new UserError(
      `Cannot load model "${path}": not a GGUF file`,
      "for a llama2.c .bin checkpoint pass its SentencePiece model with --tokenizer tok.model; " +
        "otherwise convert the model with `deno task convert`",
    );
  }
  using src = new FileSource(path);
  let spec;
  try {
    spec = ggufSpecFromLlama2c(src, { name: path }).spec;
  } catch (e) {
    throw new UserError(
      `Cannot load model "${path}": neither GGUF nor a llama2.c checkpoint (${(e as Error).message})`,
      "yangtuo runs GGUF files and llama2.c legacy (version 0) .bin checkpoints",
    );
  }
  const tokenizer = await loadTokenizerFile(flags.tokenizer, "--tokenizer");
  const sink = new BytesSink();
  await writeGguf(sink, spec);
  const bytes = sink.bytes();
  const g = readGguf(new BytesSource(bytes, path));
  const config = configFromGgufMetadata(
    g.metadata,
    g.tensors.find((t) => t.name === tensorName("gguf", "tok_embd"))?.shape[0],
  );
  checkTokenizerFits(tokenizer.vocabSize, config.vocabSize, `Cannot run "${path}": tokenizer "${flags.tokenizer}"`);
  return await withHint(loadEngineFromBytes(bytes, options(config), path, tokenizer));
}

/** The engine's "out of kernel memory" RangeError, with the hint only a command can give. */
async function withHint(p: Promise<Engine>): Promise<Engine> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof RangeError && /kernel memory/.test(e.message)) throw new UserError(e.message, "use a smaller -c");
    throw e;
  }
}

/** Shared engine flags (-m, -t, -c, --tokenizer, --reference) → load options. */
export function engineFlags(
  v: Record<string, string | boolean | undefined>,
  settings: ModelLoadFlags["settings"],
): ModelLoadFlags {
  if (typeof v.model !== "string") throw new UserError("Cannot run: no model given", "pass -m MODEL.gguf");
  const enc = new TextEncoder();
  let shown = -1;
  const onProgress = progressEnabled()
    ? (done: number, total: number) => {
      const pct = Math.floor((100 * done) / total);
      if (pct === shown) return;
      shown = pct;
      Deno.stderr.writeSync(enc.encode(`\rloading weights ${pct}%${done === total ? "\r\x1b[K" : ""}`));
    }
    : undefined;
  return {
    model: v.model,
    tokenizer: v.tokenizer as string | undefined,
    settings,
    useReference: v.reference === true,
    onProgress,
  };
}
