/**
 * `convert IN OUT.gguf`: any readable base model (HF folder, Meta folder, llama2.c .bin, GGUF) → GGUF at f16
 * (default) or f32 (or q8_0 / q4_0 directly), with the tokenizer embedded — the merge pipeline with no LoRA.
 */
import { UsageError } from "../core/errors.ts";
import { parseQuantTarget } from "../quant/quantize_plan.ts";
import { intFlag, parseFlags, PIPELINE_FLAGS } from "./_args.ts";
import { convertToGguf } from "./_pipeline_files.ts";
import { formatBytes, formatDuration } from "./_progress.ts";

const USAGE = `usage: deno task convert IN OUT.gguf [--outtype f16|f32|q8_0|q4_0] [--tokenizer FILE] [--force]

IN: a Hugging Face folder (config.json + safetensors/.bin), a Meta folder (params.json + consolidated.*.pth),
a llama2.c .bin or a GGUF. The tokenizer comes from --tokenizer (tokenizer.model or llama2.c tokenizer.bin),
else tokenizer.model next to IN, else IN's own GGUF vocabulary.

  --outtype TYPE      f16 (default) | f32 | q8_0 | q4_0
  --tokenizer FILE    tokenizer to embed
  -t, --threads N     threads: main reads, N-1 workers encode (default 1, see bench/README.md)
  --force             overwrite OUT.gguf if it exists
  -h, --help          show this help`;

/** Entry point. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    outtype: { type: "string", default: "f16" },
    tokenizer: { type: "string" },
    ...PIPELINE_FLAGS,
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
