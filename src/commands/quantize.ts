/**
 * `quantize IN.gguf OUT.gguf TYPE`: rewrite a GGUF at q4_0 / q8_0 / f16 / f32, streaming one tensor at a time
 * (row blocks of ~1 Mi values), quantized in WASM; the output appears only when complete (temp file + rename).
 * Type rules: src/quant/quantize_plan.ts (llama.cpp --pure: 2-D weights at TYPE, 1-D tensors F32).
 */
import { UsageError } from "../core/errors.ts";
import { parseQuantTarget } from "../quant/quantize_plan.ts";
import { intFlag, parseFlags, PIPELINE_FLAGS } from "./_args.ts";
import { quantizeFile } from "./_pipeline_files.ts";
import { formatBytes, formatDuration } from "./_progress.ts";

const USAGE = `usage: deno task quantize IN.gguf OUT.gguf TYPE [--allow-requantize] [--force]

TYPE: q4_0 | q8_0 | f16 | f32. Weights with 2+ dimensions take TYPE (token_embd and output.weight too, like
llama.cpp's --pure); 1-D tensors (norms) stay F32; rows that are not whole blocks fall back to F16.

  -t, --threads N      threads: main reads, N-1 workers quantize (default 1, see bench/README.md)
  --allow-requantize   accept Q4_0/Q8_0 input tensors (dequantized first; quality suffers)
  --force              overwrite OUT.gguf if it exists
  -h, --help           show this help`;

/** Entry point. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    "allow-requantize": { type: "boolean", default: false },
    ...PIPELINE_FLAGS,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 3) throw new UsageError("expected IN.gguf OUT.gguf TYPE");
  const [inPath, outPath, typeName] = positionals;
  const target = parseQuantTarget(typeName);
  if (!target) throw new UsageError(`TYPE must be q4_0, q8_0, f16 or f32, got "${typeName}"`);
  const threads = values.threads === undefined ? 1 : intFlag(values.threads, "--threads", 1, 1);
  const r = await quantizeFile(inPath, outPath, target, {
    allowRequantize: values["allow-requantize"],
    force: values.force,
    threads,
  });
  console.log(
    `wrote ${outPath}: ${r.tensors} tensors (${r.types}), ${formatBytes(r.outputBytes)} in ${
      formatDuration(r.seconds)
    } ` +
      `(${formatBytes(r.inputBytes / Math.max(r.seconds, 1e-3))}/s of input)`,
  );
  return 0;
}
