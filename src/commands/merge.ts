/**
 * `merge`: base LLaMA weights + Chinese LoRA(s) → GGUF (optionally quantized) / Hugging Face / Meta pth, in one
 * streaming pass. Flags mirror the seed's merge_llama_with_chinese_lora.py (--base-model, --lora-model,
 * --output-type, --output-dir); see src/merge/plan.ts for the semantics.
 */
import { UsageError } from "../core/errors.ts";
import { parseQuantTarget, type QuantTarget } from "../quant/quantize_plan.ts";
import { intFlag, parseFlags, PIPELINE_FLAGS } from "./_args.ts";
import { merge } from "./_pipeline_files.ts";
import { formatBytes, formatDuration } from "./_progress.ts";

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
    ...PIPELINE_FLAGS,
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
