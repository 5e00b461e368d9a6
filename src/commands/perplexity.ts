/**
 * `perplexity`: llama.cpp-style perplexity of a model over a text file. The text is tokenized once (BOS first),
 * cut into chunks of -c tokens; each chunk starts from an empty cache with its first token replaced by BOS, and
 * only the second half of each chunk is scored (every scored token sees at least c/2 tokens of context).
 * Prints the running estimate per chunk to stderr (`[1]5.1234,[2]…`) and the final value to stdout.
 * see: llama.cpp examples/perplexity/perplexity.cpp (2023, `perplexity()`)
 */
import { UserError } from "../core/errors.ts";
import { engineFlags, openEngine } from "./_engine_open.ts";
import { intFlag, parseFlags } from "./_args.ts";
import { checkInputPath } from "./_model_fs.ts";
import {
  CONTEXT_FLAGS,
  parseSamplingFlags,
  SAMPLING_DEFAULTS,
  type SamplingDefaults,
  withNegativeValues,
} from "./_sampling_flags.ts";

const USAGE = `usage: perplexity -m MODEL -f TEXT [-c N] [-t N] [--chunks N] [--json]

llama.cpp-style perplexity: chunks of -c tokens, the second half of each scored.

  -m, --model PATH      GGUF model (or llama2.c .bin with --tokenizer)
  -f, --file PATH       text to score
  -c, --ctx-size N      tokens per chunk (default 512, or the model's context_length if smaller)
  -t, --threads N       threads (default: all cores; capped at the cores and at what the model can use)
      --chunks N        score at most N chunks (default: all)
      --tokenizer PATH  SentencePiece tokenizer.model (for llama2.c .bin models)
      --reference       run the slow TypeScript reference
      --json            print {"perplexity","chunks","tokens_scored","ctx"} instead of a number
  -h, --help            show this help`;

/** perplexity's defaults: a 512-token context (llama.cpp's perplexity default). */
const PERPLEXITY_DEFAULTS: SamplingDefaults = { ...SAMPLING_DEFAULTS, contextSize: 512 };

const FLAGS = {
  model: { type: "string", short: "m" },
  file: { type: "string", short: "f" },
  ...CONTEXT_FLAGS,
  chunks: { type: "string" },
  tokenizer: { type: "string" },
  reference: { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** -log softmax(logits)[target], computed with max subtraction in f64. */
export function negLogProb(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return Math.log(sum) - (logits[target] - max);
}

/** Runs `perplexity`. */
export async function run(args: string[]): Promise<number> {
  const { values: v } = parseFlags(withNegativeValues(args, FLAGS), FLAGS);
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const load = engineFlags(v, parseSamplingFlags(v, PERPLEXITY_DEFAULTS));
  const maxChunks = v.chunks === undefined ? Infinity : intFlag(v.chunks, "--chunks", 1, 1);
  if (v.file === undefined) throw new UserError("Cannot compute perplexity: no text given", "pass -f TEXT_FILE");
  checkInputPath(v.file, "file", "-f");
  const text = Deno.readTextFileSync(v.file);
  const t0 = performance.now();
  const engine = await openEngine(load);
  try {
    const nCtx = engine.contextSize;
    const tok = engine.tokenizer;
    const ids = tok.encode(text, { bos: true });
    const nChunks = Math.min(Math.floor(ids.length / nCtx), maxChunks);
    if (nChunks < 1) {
      throw new UserError(
        `Cannot compute perplexity: the text has ${ids.length} tokens, fewer than one chunk of ${nCtx}`,
        "use a longer text or a smaller -c",
      );
    }
    console.error(
      `${ids.length} tokens, ${nChunks} chunk(s) of ${nCtx}; load ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    const first = Math.min(512, Math.floor(nCtx / 2));
    let nll = 0;
    let count = 0;
    const tStart = performance.now();
    const progress: string[] = [];
    for (let c = 0; c < nChunks; c++) {
      const chunk = ids.slice(c * nCtx, (c + 1) * nCtx);
      const input = chunk.slice();
      input[0] = tok.bosId; // llama.cpp: every chunk starts with BOS
      const logits = await engine.evalAll(input, 0);
      // logits[j] predicts chunk[j + 1]; score the second half
      for (let j = first; j < nCtx - 1; j++) {
        nll += negLogProb(logits[j], chunk[j + 1]);
        count++;
      }
      progress.push(`[${c + 1}]${Math.exp(nll / count).toFixed(4)}`);
      Deno.stderr.writeSync(new TextEncoder().encode(progress[progress.length - 1] + (c + 1 < nChunks ? "," : "\n")));
    }
    const ppl = Math.exp(nll / count);
    const secs = (performance.now() - tStart) / 1000;
    console.error(`${count} tokens scored in ${secs.toFixed(1)} s (${((nChunks * nCtx) / secs).toFixed(1)} tok/s)`);
    if (v.json) console.log(JSON.stringify({ perplexity: ppl, chunks: nChunks, tokens_scored: count, ctx: nCtx }));
    else console.log(ppl.toFixed(4));
  } finally {
    engine.close();
  }
  return 0;
}
