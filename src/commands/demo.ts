/**
 * `demo`: first contact. By default it opens the shipped yangtuo-poetry model (made by `make-model` from
 * babyllama105 + 全唐詩), shows its extended vocabulary at work, re-makes its Q4_0 file with `quantize` and checks it
 * is the shipped one bit for bit, then asks it for a poem in Chinese and measures the reply's form.
 * `--random`: the seed's whole workflow on a seeded random model (tokenizer → base → LoRA → merge → quantize →
 * chat). Writes only under /tmp.
 * see: fixtures/tiny_model.ts (generators), commands/merge.ts, commands/quantize.ts, src/chat, make_model.ts
 */
import { UsageError, UserError } from "../core/errors.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import {
  type TinyFile,
  tinyHfFiles,
  tinyLoraFiles,
  type TinyLoraSpec,
  type TinyModelSpec,
} from "../../fixtures/tiny_model.ts";
import { loadEngine } from "../model/engine.ts";
import { ChatSession } from "../chat/session.ts";
import { terminalSafe } from "../chat/repl.ts";
import { Sampler } from "../sampling/sampler.ts";
import { buildDemoTokenizer } from "../../fixtures/demo_tokenizer.ts";
import { intFlag, parseFlags } from "./_args.ts";
import { merge, quantizeFile } from "./_pipeline_files.ts";
import { CHAT_DEFAULTS } from "./_sampling_flags.ts";
import { getTemplate } from "../chat/templates.ts";
import { checkForm, requestedForm } from "../train/poetry.ts";
import {
  DEFAULT_MODEL_CHAT,
  DEFAULT_MODEL_DEMO_PROMPT,
  DEFAULT_MODEL_DIR,
  DEFAULT_MODEL_FILE,
  DEFAULT_MODEL_Q4_0_FILE,
} from "./_default_model.ts";

const USAGE = `usage: deno task demo [--random] [--keep] [--seed N] [-t N]

Default: the shipped model models/yangtuo-poetry (babyllama105 + 全唐詩, made by \`deno task make-model\`):
its vocabulary (English base + Chinese pieces) on a request, quantize Q8_0 → Q4_0 (checked against the shipped
Q4_0 bit for bit), then one chat turn in Chinese ("${DEFAULT_MODEL_DEMO_PROMPT}") with the reply's form measured.

--random: builds a tiny Chinese-vocabulary LLaMA and a LoRA from seeded random numbers, then runs the real
pipeline on them: merge (LoRA into base, GGUF F16) → quantize (Q4_0) → one Alpaca chat turn (noise, not Chinese).

Needs no download; writes only a scratch folder under /tmp (removed at the end unless --keep).

  --random      the random-weights pipeline instead of the shipped model
  --keep        keep the scratch folder and print its path
  --seed N      seed of the weights and the sampler (default 1)
  -t N          threads (default: number of CPUs)
  -h, --help    show this help`;

/** The demo model: LLaMA's architecture at toy size. */
export const DEMO_SPEC: Omit<TinyModelSpec, "vocabSize"> = {
  dim: 256,
  hiddenDim: 688,
  nLayers: 4,
  nHeads: 8,
  contextLength: 512,
  normEps: 1e-6,
};

/** The question asked in the last step. */
export const DEMO_QUESTION = "用一句话介绍北京。";

async function writeFiles(dir: string, files: TinyFile[]): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const f of files) await writeFileAtomic(`${dir}/${f.path}`, (sink) => f.write(sink));
}

/** `demo` entry point. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    keep: { type: "boolean", default: false },
    random: { type: "boolean", default: false },
    seed: { type: "string" },
    threads: { type: "string", short: "t" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const seed = intFlag(values.seed, "--seed", 1, 0);
  const threads = values.threads === undefined ? undefined : intFlag(values.threads, "-t", 1, 1);
  if (threads !== undefined && threads > 64) throw new UsageError("-t expects at most 64 threads");

  if (!values.random) return await runShipped(seed, threads, values.keep);
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "yangtuo-demo-" });
  const say = (s: string) => console.log(s);
  const t00 = performance.now();
  const steps = stepTimer(6, say);
  const timed = steps.timed;

  say("yangtuo demo: the Chinese-LLaMA-Alpaca workflow on a tiny random model (nothing downloaded)");
  say(`scratch folder: ${dir}\n`);
  try {
    // 1. tokenizer: LLaMA-style SentencePiece + generated Chinese pieces (what merge-tokenizer does to LLaMA)
    const tok = await timed(
      "tokenizer",
      () => Promise.resolve(buildDemoTokenizer()),
      (t) =>
        `SentencePiece BPE with byte fallback, ${t.basePieces} pieces + ${t.addedPieces} generated Chinese pieces ` +
        `(extendVocabulary, as merge_tokenizers.py) = ${t.pieces}`,
    );
    await Deno.writeFile(`${dir}/tokenizer.model`, tok.model);

    // 2. base model: HF layout, base vocabulary (like LLaMA-7B before the Chinese vocabulary)
    const base: TinyModelSpec = { ...DEMO_SPEC, vocabSize: tok.basePieces, seed };
    await timed(
      "base model",
      () => writeFiles(`${dir}/llama-hf`, tinyHfFiles(base, { dtype: "F16" })),
      () =>
        `LLaMA dim ${base.dim}, ${base.nLayers} layers, ${base.nHeads} heads, vocab ${base.vocabSize}, seeded random ` +
        `weights → llama-hf/ (Hugging Face safetensors, F16)`,
    );

    // 3. LoRA: the Chinese-Alpaca recipe (all linear layers + embed_tokens/lm_head over the extended vocabulary)
    const lora: TinyLoraSpec = {
      r: 8,
      alpha: 32,
      targetModules: ["q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "down_proj", "up_proj"],
      modulesToSave: ["embed_tokens", "lm_head"],
      vocabSize: tok.pieces,
      seed: seed + 1,
      tokenizerModel: tok.model,
    };
    await timed(
      "LoRA",
      () => writeFiles(`${dir}/chinese-alpaca-lora`, tinyLoraFiles(base, lora)),
      () =>
        `r ${lora.r}, alpha ${lora.alpha}, q/k/v/o/gate/down/up + embed_tokens/lm_head (${tok.pieces} rows) → ` +
        `chinese-alpaca-lora/ (PEFT adapter_model.bin + tokenizer.model)`,
    );

    // 4. merge
    const merged = await timed(
      "merge",
      () =>
        merge({
          baseModel: `${dir}/llama-hf`,
          loraModels: [`${dir}/chinese-alpaca-lora`],
          outputType: "gguf",
          outputDir: `${dir}/merged`,
          onWarning: () => {},
        }),
      (r) => `base + LoRA → merged/${r.files.join(", ")} (GGUF F16, vocab ${r.vocabSize})`,
    );
    const f16 = `${dir}/merged/${merged.files.find((f) => f.endsWith(".gguf"))}`;

    // 5. quantize
    const q4 = `${dir}/merged/ggml-model-q4_0.gguf`;
    await timed("quantize", async () => {
      return (await quietly(() => quantizeFile(f16, q4, "Q4_0"))).outputBytes;
    }, (size) => `F16 → Q4_0, merged/ggml-model-q4_0.gguf (${(size / 1e6).toFixed(2)} MB)`);

    // 6. one chat turn, streamed
    say(`${steps.next()} chat: one Alpaca turn on the Q4_0 model (random weights: expect noise)`);
    const engine = await loadEngine(q4, { threads, contextSize: 256 });
    try {
      const session = new ChatSession(engine, { maxNewTokens: 40, sampler: samplerOf(CHAT_DEFAULTS, seed) });
      const reply = await streamTurn(session, DEMO_QUESTION, demoVisible);
      const rate = reply.generateMs > 0 ? (reply.nGenerated / (reply.generateMs / 1000)).toFixed(0) : "?";
      say(
        `\n      (${reply.nPromptTokens} prompt tokens in ${
          reply.promptMs.toFixed(0)
        } ms; ${reply.nGenerated} tokens ` +
          `generated at ${rate} tokens/s; ${engine.nThreads} thread(s)${
            reply.text.includes(REPLACEMENT) ? `; ${INVALID_MARK} = a byte that is not valid UTF-8` : ""
          })`,
      );
    } finally {
      engine.close();
    }

    say(`\ndone in ${((performance.now() - t00) / 1000).toFixed(2)} s.`);
    say(
      [
        "",
        "The weights are random, so the reply above is noise: the demo shows the pipeline works, not a model.",
        "`deno task demo` without --random talks to the shipped yangtuo-poetry model; `deno task chat` too.",
        "To chat with a big model (the seed's workflow):",
        "  1. get the original LLaMA weights (HF or Meta layout) and a Chinese-LLaMA/Alpaca LoRA folder;",
        "  2. deno task merge --base-model path/to/llama-7b-hf --lora-model path/to/chinese-alpaca-lora-7b \\",
        "       --output-dir zh-models/7B --quant q4_0",
        "  3. deno task chat -m zh-models/7B/ggml-model-q4_0.gguf --color",
      ].join("\n"),
    );
  } finally {
    if (values.keep) say(`\nkept: ${dir}`);
    else await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return 0;
}

const REPLACEMENT = "\uFFFD";
/** What the demo shows for U+FFFD: random weights pick byte tokens that form no character. */
const INVALID_MARK = "·";

/**
 * The demo reply as shown: terminal-safe, and U+FFFD (an invalid byte from random byte tokens; a character split
 * over byte tokens is never shown as U+FFFD) drawn as `·`, explained after the reply, so the README's promise that
 * `�` never appears holds for the demo too.
 */
export function demoVisible(text: string): string {
  return terminalSafe(text).replaceAll(REPLACEMENT, INVALID_MARK);
}

/**
 * Runs `fn` with console output held back (the quantize command reports on its own; the demo reports instead);
 * what was held is printed only if `fn` fails.
 */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const { log, error } = console;
  const held: string[] = [];
  console.log = console.error = (...a: unknown[]) => void held.push(a.join(" "));
  try {
    return await fn();
  } catch (e) {
    for (const line of held) error(line);
    throw e;
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function sha256Hex(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The default demo: the shipped model, its vocabulary, a re-made Q4_0 and one Chinese chat turn. */
async function runShipped(seed: number, threads: number | undefined, keep: boolean): Promise<number> {
  const q8 = `${DEFAULT_MODEL_DIR}${DEFAULT_MODEL_FILE}`;
  const shippedQ4 = `${DEFAULT_MODEL_DIR}${DEFAULT_MODEL_Q4_0_FILE}`;
  try {
    await Deno.stat(q8);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(
        `Cannot find the shipped model "${q8}"`,
        "restore models/yangtuo-poetry from git, run `deno task make-model`, or try `deno task demo --random`",
      );
    }
    throw e;
  }
  const say = (s: string) => console.log(s);
  const t00 = performance.now();
  const steps = stepTimer(4, say);
  const timed = steps.timed;
  say(
    "yangtuo demo: the shipped model yangtuo-poetry — babyllama105 (English) taught 全唐詩 by `deno task make-model`",
  );
  say(`model folder: ${DEFAULT_MODEL_DIR} (see PROVENANCE.md there)\n`);
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "yangtuo-demo-" });
  try {
    // 1. open the model: the merged GGUF with its extended tokenizer embedded
    const engine = await timed(
      "model",
      () => loadEngine(q8, { threads, contextSize: DEFAULT_MODEL_CHAT.contextSize }),
      (e) =>
        `${DEFAULT_MODEL_FILE}: LLaMA dim ${e.config.dim}, ${e.config.nLayers} layers, vocab ${e.config.vocabSize} ` +
        `(babyllama's 105 pieces + ${e.config.vocabSize - 105} Chinese pieces from merge-tokenizer), Q8_0`,
    );
    try {
      // 2. the vocabulary extension at work: which pieces of the request exist only thanks to the Chinese pieces
      await timed("tokenizer", () => {
        const ids = engine.tokenizer.encode(DEFAULT_MODEL_DEMO_PROMPT, { bos: false });
        return Promise.resolve(ids);
      }, (ids) => {
        const pieces = ids.map((id) => engine.tokenizer.vocab.pieces[id] ?? "?");
        const added = ids.filter((id) => id >= 105).length;
        return `"${DEFAULT_MODEL_DEMO_PROMPT}" → ${ids.length} tokens [${pieces.join(" ")}]; ${added} of them ` +
          `are added Chinese pieces (babyllama's own vocabulary had none: all <unk>)`;
      });

      // 3. quantize Q8_0 → Q4_0 as the recipe's last step did; the result must be the shipped Q4_0 bit for bit
      const q4 = `${dir}/${DEFAULT_MODEL_Q4_0_FILE}`;
      await timed(
        "quantize",
        async () => {
          await quietly(() => quantizeFile(q8, q4, "Q4_0", { allowRequantize: true }));
          let same: boolean | null = null;
          try {
            same = (await sha256Hex(q4)) === (await sha256Hex(shippedQ4));
          } catch (e) {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          }
          return { size: (await Deno.stat(q4)).size, same };
        },
        (r) =>
          `Q8_0 → Q4_0 (${(r.size / 1e6).toFixed(2)} MB): ${
            r.same === null
              ? "no shipped Q4_0 to compare"
              : r.same
              ? "identical to the shipped yangtuo-poetry-q4_0.gguf"
              : "DIFFERS from the shipped Q4_0"
          }`,
      );

      // 4. one chat turn in Chinese, streamed, with the model's own template and settings
      say(
        `${steps.next()} chat: one turn (template ${DEFAULT_MODEL_CHAT.template}, temp ${DEFAULT_MODEL_CHAT.temperature})`,
      );
      const session = new ChatSession(engine, {
        template: getTemplate(DEFAULT_MODEL_CHAT.template),
        maxNewTokens: DEFAULT_MODEL_CHAT.maxNewTokens,
        sampler: samplerOf(DEFAULT_MODEL_CHAT, seed),
      });
      const reply = await streamTurn(session, DEFAULT_MODEL_DEMO_PROMPT, terminalSafe);
      const form = checkForm(reply.text, requestedForm(DEFAULT_MODEL_DEMO_PROMPT)!);
      const rate = reply.generateMs > 0 ? (reply.nGenerated / (reply.generateMs / 1000)).toFixed(0) : "?";
      say(
        `\n      (${reply.nGenerated} tokens at ${rate} tokens/s; form: ${form.lines.length} lines of ` +
          `${form.lines.map((l) => [...l].length).join("/")} characters — ${
            form.follows ? "a 五言絕句 as asked" : "not exactly the form asked for"
          })`,
      );
    } finally {
      engine.close();
    }
    say(`\ndone in ${((performance.now() - t00) / 1000).toFixed(2)} s.`);
    say(
      [
        "",
        "A 2.5M-parameter model: expect verse-shaped classical Chinese, not meaning. Next:",
        "  deno task chat                      talk to it (寫一首題為《秋夜》的七言絕句。 / 續寫下面這首詩。…)",
        "  deno task make-model --quick        re-make a small one from scratch (~5 min; see README)",
        "  deno task demo --random             the seed's merge → quantize pipeline on random weights",
      ].join("\n"),
    );
  } finally {
    if (keep) say(`\nkept: ${dir}`);
    else await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return 0;
}

/** `[step/n] title: detail  (time)` lines for the demo's numbered steps; next() labels an untimed step. */
function stepTimer(n: number, say: (s: string) => void) {
  let step = 0;
  const next = () => `[${++step}/${n}]`;
  const timed = async <T>(title: string, fn: () => Promise<T>, detail: (r: T) => string): Promise<T> => {
    const label = next();
    const t0 = performance.now();
    const r = await fn();
    const ms = performance.now() - t0;
    say(`${label} ${title}: ${detail(r)}  (${ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`})`);
    return r;
  };
  return { next, timed };
}

/** A sampler with a chat preset's settings (CHAT_DEFAULTS or the default model's) and the demo's seed. */
function samplerOf(
  o: { temperature: number; topK: number; topP: number; repeatPenalty: number; repeatLastN: number },
  seed: number,
): Sampler {
  const { temperature, topK, topP, repeatPenalty, repeatLastN } = o;
  return new Sampler({ temperature, topK, topP, repeatPenalty, repeatLastN, seed });
}

/** One chat turn, the question echoed and the reply streamed to stdout indented under it (`visible` filters it). */
function streamTurn(session: ChatSession, question: string, visible: (s: string) => string) {
  console.log(`      > ${question}`);
  const enc = new TextEncoder();
  Deno.stdout.writeSync(enc.encode("      "));
  return session.respond(question, {
    onText: (s) => Deno.stdout.writeSync(enc.encode(visible(s).replaceAll("\n", "\n      "))),
  });
}
