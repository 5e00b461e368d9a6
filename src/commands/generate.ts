/**
 * `generate`: one-shot completion, llama.cpp `main -m MODEL -p PROMPT` style. stdout carries only the generated
 * text (streamed) or, with --json, `{"prompt_ids":[…],"ids":[…],"text":"…"}`; stats go to stderr.
 * Models: GGUF; llama2.c .bin checkpoints with `--tokenizer tok.model` (converted in memory).
 * see: llama.cpp examples/main, src/model/engine.ts
 */
import { UserError } from "../core/errors.ts";
import { BytesSink } from "../core/byte_source.ts";
import { writeGguf } from "../formats/gguf_writer.ts";
import { FileSource } from "../io/file_source.ts";
import { type Engine, type EngineOptions, generate, loadEngine, loadEngineFromBytes } from "../model/engine.ts";
import { ggufSpecFromLlama2c } from "../model/llama2c_gguf.ts";
import { Sampler } from "../sampling/sampler.ts";
import {
  readSentencePieceModel,
  StreamingDecoder,
  type Tokenizer,
  tokenizerFromSentencePiece,
} from "../tokenizer/mod.ts";
import { floatFlag, intFlag, parseFlags } from "./_args.ts";
import { progressEnabled } from "./_progress.ts";

const USAGE = `usage: generate -m MODEL -p PROMPT [options]

One-shot completion. stdout gets only the generated text (or JSON with --json); stats go to stderr.

  -m, --model PATH        GGUF model (or llama2.c .bin with --tokenizer)
  -p, --prompt TEXT       prompt text (default: empty, i.e. BOS only)
  -f, --file PATH         read the prompt from a file
  -n, --n-predict N       tokens to generate (default 128)
      --temp T            temperature; 0 = greedy (default 0.8)
      --top-k K           top-k, 0 = off (default 40)
      --top-p P           top-p, 1 = off (default 0.95)
      --repeat-penalty R  penalty on the last --repeat-last-n tokens, 1 = off (default 1.1)
      --repeat-last-n N   window of the repeat penalty (default 64)
      --seed S            RNG seed (default: random, printed to stderr)
  -t, --threads N         threads / shards (default: all cores)
  -c, --ctx-size N        context size (default 512)
      --json              print {"prompt_ids","ids","text"} instead of streaming text
      --no-bos            do not prepend BOS to the prompt
      --ignore-eos        keep generating past EOS
      --tokenizer PATH    SentencePiece tokenizer.model (required for llama2.c .bin models)
      --reference         run the slow TypeScript reference instead of the WASM engine
  -h, --help              show this help`;

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

/** Options shared by generate and perplexity for loading a model. */
export interface ModelLoadFlags {
  model: string;
  tokenizer?: string;
  engine: EngineOptions;
}

/** Loads a GGUF or (with a tokenizer.model) a llama2.c checkpoint. */
export async function openEngine(flags: ModelLoadFlags): Promise<Engine> {
  const path = flags.model;
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
  const isGguf = size >= 4 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46;
  if (isGguf) return await loadEngine(path, flags.engine);
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
  let tokenizer;
  try {
    tokenizer = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(flags.tokenizer)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot open tokenizer "${flags.tokenizer}": file not found`, "check --tokenizer");
    }
    throw new UserError(
      `Cannot read tokenizer "${flags.tokenizer}": ${(e as Error).message}`,
      "pass the SentencePiece tokenizer.model the checkpoint was trained with",
    );
  }
  const sink = new BytesSink();
  await writeGguf(sink, spec);
  return await loadEngineFromBytes(sink.bytes(), flags.engine, path, tokenizer);
}

/** Shared engine flags (-m, -t, -c, --tokenizer, --reference) → load options. */
export function engineFlags(v: Record<string, string | boolean | undefined>, defaultCtx: number): ModelLoadFlags {
  if (typeof v.model !== "string") throw new UserError("Cannot run: no model given", "pass -m MODEL.gguf");
  const threads = v.threads === undefined ? undefined : intFlag(v.threads as string, "--threads", 1, 1);
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
    engine: {
      threads,
      contextSize: intFlag(v["ctx-size"] as string | undefined, "--ctx-size", defaultCtx, 1),
      useReference: v.reference === true,
      onProgress,
    },
  };
}

/** Runs `generate`. */
export async function run(args: string[]): Promise<number> {
  const { values: v } = parseFlags(args, {
    model: { type: "string", short: "m" },
    prompt: { type: "string", short: "p" },
    file: { type: "string", short: "f" },
    "n-predict": { type: "string", short: "n" },
    temp: { type: "string" },
    "top-k": { type: "string" },
    "top-p": { type: "string" },
    "repeat-penalty": { type: "string" },
    "repeat-last-n": { type: "string" },
    seed: { type: "string" },
    threads: { type: "string", short: "t" },
    "ctx-size": { type: "string", short: "c" },
    json: { type: "boolean" },
    bos: { type: "boolean" },
    "ignore-eos": { type: "boolean" },
    tokenizer: { type: "string" },
    reference: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const load = engineFlags(v, 512);
  const nPredict = intFlag(v["n-predict"], "--n-predict", 128, 0);
  const seedFlag = intFlag(v.seed, "--seed", -1);
  const seed = seedFlag < 0 ? Math.floor(Math.random() * 2 ** 31) : seedFlag;
  const sampler = new Sampler({
    temperature: floatFlag(v.temp, "--temp", 0.8),
    topK: intFlag(v["top-k"], "--top-k", 40),
    topP: floatFlag(v["top-p"], "--top-p", 0.95),
    repeatPenalty: floatFlag(v["repeat-penalty"], "--repeat-penalty", 1.1),
    repeatLastN: intFlag(v["repeat-last-n"], "--repeat-last-n", 64, -1),
    seed,
  });
  let prompt = v.prompt ?? "";
  if (v.file !== undefined) {
    try {
      prompt = Deno.readTextFileSync(v.file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new UserError(`Cannot read prompt file "${v.file}": not found`);
      throw e;
    }
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
