/**
 * `convert IN OUT.gguf`: any readable base model (HF folder, Meta folder, llama2.c .bin, GGUF) → GGUF at f16
 * (default) or f32 (or q8_0 / q4_0 directly), with the tokenizer embedded — the merge pipeline with no LoRA.
 */
import { UsageError, UserError } from "../core/errors.ts";
import { type GgufKv, ggufKvsOf } from "../formats/gguf_writer.ts";
import { openBase } from "../merge/open.ts";
import { checkTokenizerFits, MergeExecutor, planMerge } from "../merge/plan.ts";
import { ggufOutput } from "../merge/write.ts";
import { parseQuantTarget, type QuantTarget } from "../quant/quantize_plan.ts";
import { intFlag, parseFlags } from "./_args.ts";
import { MergePool, poolSizeFor } from "./_merge_pool.ts";
import {
  checkDiskSpace,
  checkInputPath,
  checkOutputFile,
  denoModelFs,
  interruptibleSink,
  yieldToEventLoop,
} from "./_model_fs.ts";
import { formatBytes, formatDuration, Progress } from "./_progress.ts";
import { ggufVocabFromLlama2c, ggufVocabFromModel, vocabTokenCount } from "./_tokenizer_bridge.ts";
import { loadQuantizers } from "./merge.ts";

const USAGE = `usage: deno task convert IN OUT.gguf [--outtype f16|f32|q8_0|q4_0] [--tokenizer FILE] [--force]

IN: a Hugging Face folder (config.json + safetensors/.bin), a Meta folder (params.json + consolidated.*.pth),
a llama2.c .bin or a GGUF. The tokenizer comes from --tokenizer (tokenizer.model or llama2.c tokenizer.bin),
else tokenizer.model next to IN, else IN's own GGUF vocabulary.

  --outtype TYPE      f16 (default) | f32 | q8_0 | q4_0
  --tokenizer FILE    tokenizer to embed
  -t, --threads N     threads: main reads, N-1 workers encode (default 1, see bench/README.md)
  --force             overwrite OUT.gguf if it exists
  -h, --help          show this help`;

/** Options of convertToGguf. */
export interface ConvertOptions {
  outtype?: QuantTarget;
  tokenizer?: string;
  force?: boolean;
  /** Threads (main + threads-1 workers); default 1 (no workers). */
  threads?: number;
  /** Library use (tests): allow a GGUF without a vocabulary. */
  allowNoTokenizer?: boolean;
}

/** Converts `input` to a GGUF at `output`; returns bytes read and seconds. */
export async function convertToGguf(
  input: string,
  output: string,
  o: ConvertOptions = {},
): Promise<{ inputBytes: number; outputBytes: number; seconds: number }> {
  const target = o.outtype ?? "F16";
  checkInputPath(input, "any", "IN");
  if (o.tokenizer !== undefined) checkInputPath(o.tokenizer, "file", "--tokenizer");
  checkOutputFile(output, o.force ?? false);
  const base = openBase(denoModelFs, input);
  let pool: MergePool | undefined;
  try {
    let vocab: GgufKv[] | undefined;
    const tokPath = o.tokenizer ?? base.tokenizerPath;
    if (tokPath) {
      const bytes = Deno.readFileSync(tokPath);
      vocab = tokPath.endsWith(".bin")
        ? ggufVocabFromLlama2c(bytes, base.config.vocabSize)
        : ggufVocabFromModel(bytes, tokPath);
    } else if (base.gguf) {
      vocab = ggufKvsOf(base.gguf).filter((kv) => kv.key.startsWith("tokenizer."));
    }
    if (!vocab?.length && !o.allowNoTokenizer) {
      throw new UserError(
        `Cannot convert "${input}": no tokenizer found`,
        "pass --tokenizer path/to/tokenizer.model (or tokenizer.bin for llama2.c models)",
      );
    }
    const plan = planMerge(base, []);
    // the same check merge makes: a tokenizer that does not fit the embedding rows is refused before any writing
    const nTokens = vocabTokenCount(vocab);
    if (nTokens !== undefined) {
      checkTokenizerFits(nTokens, plan.config.vocabSize, `Cannot convert "${input}": tokenizer "${tokPath ?? input}"`);
    }
    const exec = new MergeExecutor(plan);
    const workers = poolSizeFor(o.threads ?? 1);
    pool = workers > 0 ? new MergePool(workers) : undefined;
    const bar = new Progress("convert", base.inputBytes);
    const total = plan.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    const [file] = ggufOutput(plan, exec, target, {
      quantizers: await loadQuantizers(),
      tokenizer: { ggufKvs: vocab },
      name: input.slice(input.lastIndexOf("/") + 1) || "model",
      onElements: (n) => bar.add((n * base.inputBytes) / total),
      beforeTensor: yieldToEventLoop,
      tensorBytes: pool ? pool.tensorBytes.bind(pool) : undefined,
    });
    const dir = output.includes("/") ? output.slice(0, output.lastIndexOf("/")) || "/" : ".";
    const warning = checkDiskSpace(dir, file.nBytes ?? 0);
    if (warning) console.error(`warning: ${warning}`);
    const t0 = performance.now();
    const { sink, release } = interruptibleSink(output);
    try {
      await file.write(sink);
      sink.commit();
    } catch (e) {
      sink.abort();
      throw e;
    } finally {
      release();
    }
    bar.finish();
    return { inputBytes: base.inputBytes, outputBytes: sink.position, seconds: (performance.now() - t0) / 1000 };
  } finally {
    pool?.close();
    base.close();
  }
}

/** Entry point. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    outtype: { type: "string", default: "f16" },
    tokenizer: { type: "string" },
    threads: { type: "string", short: "t" },
    force: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError("expected IN OUT.gguf");
  const outtype = parseQuantTarget(values.outtype);
  if (!outtype) throw new UsageError(`--outtype must be f16, f32, q8_0 or q4_0, got "${values.outtype}"`);
  const [input, output] = positionals;
  const threads = values.threads === undefined ? undefined : intFlag(values.threads, "--threads", 1, 1);
  const r = await convertToGguf(input, output, { outtype, tokenizer: values.tokenizer, force: values.force, threads });
  console.log(
    `wrote ${output}: ${formatBytes(r.outputBytes)} from ${formatBytes(r.inputBytes)} in ${formatDuration(r.seconds)}`,
  );
  return 0;
}
