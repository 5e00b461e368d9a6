/**
 * `generate`: one-shot completion, llama.cpp `main -m MODEL -p PROMPT` style. stdout carries only the generated
 * text (streamed) or, with --json, `{"prompt_ids":[…],"ids":[…],"text":"…"}`; stats go to stderr.
 * Models: GGUF; llama2.c .bin checkpoints with `--tokenizer tok.model` (converted in memory).
 * see: llama.cpp examples/main, src/model/engine.ts
 */
import { UserError } from "../core/errors.ts";
import { generate } from "../model/engine.ts";
import { Sampler } from "../sampling/sampler.ts";
import { StreamingDecoder, type Tokenizer } from "../tokenizer/mod.ts";
import { parseFlags } from "./_args.ts";
import {
  CONTEXT_FLAGS,
  parseSamplingFlags,
  SAMPLING_DEFAULTS,
  SAMPLING_FLAGS,
  type SamplingDefaults,
  samplingUsage,
  withNegativeValues,
} from "./_sampling_flags.ts";
import { checkInputPath } from "./_model_fs.ts";
import { engineFlags, openEngine, resolveRunSettings } from "./_engine_open.ts";

/** generate's defaults: llama.cpp main's, with a 512-token context. */
export const GENERATE_DEFAULTS: SamplingDefaults = { ...SAMPLING_DEFAULTS, contextSize: 512 };

const USAGE = `usage: generate -m MODEL -p PROMPT [options]

One-shot completion. stdout gets only the generated text (or JSON with --json); stats go to stderr.

  -m, --model PATH        GGUF model (or llama2.c .bin with --tokenizer)
  -p, --prompt TEXT       prompt text (default: empty, i.e. BOS only)
  -f, --file PATH         read the prompt from a file
      --json              print {"prompt_ids","ids","text"} instead of streaming text
      --no-bos            do not prepend BOS to the prompt
      --ignore-eos        keep generating past EOS
      --tokenizer PATH    SentencePiece tokenizer.model (required for llama2.c .bin models)
      --reference         run the slow TypeScript reference instead of the WASM engine
  -h, --help              show this help

${samplingUsage(GENERATE_DEFAULTS)}`;

/**
 * The text of `ids` generated after `promptIds`, as it reads after the prompt: decode(promptIds + ids) without the
 * decoded prompt. SentencePiece (and llama.cpp) drop the dummy-prefix space only from the first piece of the whole
 * text, so the space before the first generated word stays unless the prompt decodes to nothing.
 */
export function continuationText(tok: Tokenizer, promptIds: readonly number[], ids: readonly number[]): string {
  const before = tok.decode(promptIds);
  const all = tok.decode([...promptIds, ...ids]);
  // a prompt ending inside a UTF-8 character decodes differently alone (U+FFFD) than followed by its last bytes
  return all.startsWith(before) ? all.slice(before.length) : tok.decode(ids);
}

export { resolveRunSettings };

const FLAGS = {
  model: { type: "string", short: "m" },
  prompt: { type: "string", short: "p" },
  file: { type: "string", short: "f" },
  ...SAMPLING_FLAGS,
  ...CONTEXT_FLAGS,
  json: { type: "boolean" },
  bos: { type: "boolean" },
  "ignore-eos": { type: "boolean" },
  tokenizer: { type: "string" },
  reference: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Runs `generate`. */
export async function run(args: string[]): Promise<number> {
  const { values: v } = parseFlags(withNegativeValues(args, FLAGS), FLAGS);
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const s = parseSamplingFlags(v, GENERATE_DEFAULTS);
  const load = engineFlags(v, s);
  const nPredict = s.maxNewTokens < 0 ? Infinity : s.maxNewTokens;
  const seed = s.seed < 0 ? Math.floor(Math.random() * 2 ** 31) : s.seed;
  const sampler = new Sampler({
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    repeatPenalty: s.repeatPenalty,
    repeatLastN: s.repeatLastN,
    seed,
  });
  let prompt = v.prompt ?? "";
  if (v.file !== undefined) {
    checkInputPath(v.file, "file", "-f");
    prompt = Deno.readTextFileSync(v.file);
  }

  const t0 = performance.now();
  const engine = await openEngine(load);
  const loadMs = performance.now() - t0;
  try {
    const tok = engine.tokenizer;
    const promptIds = prompt === ""
      ? (v.bos === false ? [] : [tok.bosId])
      : tok.encode(prompt, { bos: v.bos !== false });
    if (promptIds.length === 0) {
      throw new UserError("Cannot generate: the prompt is empty and --no-bos leaves no token", "give a prompt with -p");
    }
    const c = engine.config;
    console.error(
      `model: dim ${c.dim}, ${c.nLayers} layers, ${c.nHeads}/${c.nKvHeads} heads, vocab ${c.vocabSize}; ` +
        `context ${engine.contextSize}, ${engine.nThreads} thread(s), ${engine.nShards} shard(s); seed ${seed}; load ${
          (loadMs / 1000).toFixed(2)
        } s`,
    );
    // the prompt goes through the decoder first (output discarded): its state then knows whether the first
    // generated piece starts the text (dummy-prefix space dropped) or continues it (space kept)
    const decoder = new StreamingDecoder(tok);
    for (const id of promptIds) decoder.push(id);
    const enc = new TextEncoder();
    const out = (s: string) => {
      if (s) Deno.stdout.writeSync(enc.encode(s));
    };
    const r = await generate(engine, sampler, promptIds, {
      maxTokens: nPredict,
      stopAt: v["ignore-eos"] ? [] : undefined,
      onToken: v.json ? undefined : (id) => out(decoder.push(id)),
    });
    if (v.json) {
      console.log(JSON.stringify({ prompt_ids: promptIds, ids: r.ids, text: continuationText(tok, promptIds, r.ids) }));
    } else {
      out(decoder.flush());
      out("\n");
    }
    const rate = (n: number, ms: number) => (ms > 0 ? (n / ms) * 1000 : 0).toFixed(2);
    console.error(
      `load ${(loadMs / 1000).toFixed(2)} s; prompt ${promptIds.length} tokens ${
        rate(promptIds.length, r.promptMs)
      } tok/s; ` +
        `generated ${r.ids.length} tokens ${rate(Math.max(0, r.ids.length - 1), r.generateMs)} tok/s (stop: ${r.stop})`,
    );
  } finally {
    engine.close();
  }
  return 0;
}
