/**
 * `make-model`: the seed's whole story at laptop scale — an English base (babyllama105) gets a Chinese vocabulary
 * from a SentencePiece model trained on 全唐詩, pre-training stage 1 (embeddings) and stage 2 (LoRA + embeddings),
 * instruction tuning on Alpaca records generated from the poems, merge (base + pt LoRA + sft LoRA, the
 * Chinese-Alpaca-Plus order), Q8_0/Q4_0 GGUF, then held-out perplexity and a form-following evaluation.
 * Each step is the product's own command run as a subprocess (so the recipe is the end-to-end test of the training
 * half); the corpus and the evaluation call the library functions directly. Seeded and resumable (--resume).
 * see: the seed's scripts/merge_tokenizer, scripts/training/run_pt.sh + run_sft.sh, scripts/merge_llama_with_*
 */
import { UsageError, UserError } from "../core/errors.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { loadEngine } from "../model/engine.ts";
import { generate } from "../model/generate.ts";
import { Sampler } from "../sampling/sampler.ts";
import { readSentencePieceModel, tokenizerFromSentencePiece } from "../tokenizer/mod.ts";
import { alpacaPrompt, type AlpacaRecord } from "../train/data.ts";
import {
  checkForm,
  cleanPoem,
  dedupePoems,
  generateInstructions,
  isHeldOut,
  type Poem,
  poemPretrainText,
  type PoetryRecord,
  requestedForm,
} from "../train/poetry.ts";
import { intFlag, parseFlags } from "./_args.ts";
import { formatDuration } from "./_progress.ts";

/** The corpus package, pinned. */
export const POETRY_PACKAGE = "chinese-poetry";
export const POETRY_VERSION = "2.0.1";

/** The recipe's sizes: the full one and the --quick one (CI-sized). */
export interface Recipe {
  name: "full" | "quick";
  /** training poems kept (0 = all) */
  maxPoems: number;
  /** held-out share of poems, per mille */
  heldOutPerMille: number;
  vocabSize: number;
  characterCoverage: number;
  blockSize: number;
  batchSize: number;
  gradAccum: number;
  stage1: { steps: number; lr: number };
  stage2: { steps: number; lr: number; rank: number; alpha: number };
  sft: { steps: number; lr: number; rank: number; alpha: number; maxPerKind: number; maxSeqLength: number };
  /** held-out instruction records (poem requests ~70 %) */
  heldOutInstructions: number;
  /** held-out poem requests the form evaluation generates replies for */
  evalPrompts: number;
  seed: number;
}

export const FULL_RECIPE: Recipe = {
  name: "full",
  maxPoems: 0,
  heldOutPerMille: 20,
  vocabSize: 4500,
  characterCoverage: 0.995,
  blockSize: 256,
  batchSize: 4,
  gradAccum: 2,
  stage1: { steps: 150, lr: 2e-3 },
  stage2: { steps: 250, lr: 1e-3, rank: 16, alpha: 32 },
  sft: { steps: 2000, lr: 1e-3, rank: 16, alpha: 32, maxPerKind: 6000, maxSeqLength: 256 },
  heldOutInstructions: 200,
  evalPrompts: 60,
  seed: 42,
};

export const QUICK_RECIPE: Recipe = {
  name: "quick",
  maxPoems: 6000,
  heldOutPerMille: 20,
  vocabSize: 3500,
  characterCoverage: 0.99,
  blockSize: 128,
  batchSize: 4,
  gradAccum: 1,
  stage1: { steps: 30, lr: 3e-3 },
  stage2: { steps: 30, lr: 1e-3, rank: 8, alpha: 16 },
  sft: { steps: 40, lr: 1e-3, rank: 8, alpha: 16, maxPerKind: 400, maxSeqLength: 256 },
  heldOutInstructions: 40,
  evalPrompts: 12,
  seed: 42,
};

const USAGE = `usage: deno task make-model [--quick] [--out DIR] [--work-dir DIR] [--resume] [-t N]

Makes yangtuo's default model the way the seed made Chinese-Alpaca, with the project's own commands:
  1 corpus      全唐詩 from npm ${POETRY_PACKAGE}@${POETRY_VERSION} (Deno npm cache; cached on first use),
                cleaned, deduplicated, a fixed held-out split (2 % by a hash of each poem)
  2 base        babyllama105 (llama2.c .bin + tok105.model) → GGUF F32          (convert)
  3 tokenizer   a BPE SentencePiece model on the corpus, merged onto tok105 with byte fallback
                                                                                 (train-tokenizer, merge-tokenizer)
  4 stage 1     embeddings + lm_head only                                      (pretrain --stage 1)
  5 stage 2     LoRA + embeddings, on the stage-1 model                        (merge, pretrain --stage 2)
  6 sft         LoRA on Alpaca records generated from the poems                (merge, sft)
  7 merge       base + pt LoRA + sft LoRA → Q8_0 GGUF, then Q4_0              (merge, quantize)
  8 evaluate    held-out perplexity per stage, form-following of replies to held-out poem requests (base vs final)
  9 compare     base vs final on held-out prompts, side by side                 (compare)
 10 ship        the GGUFs, PROVENANCE.md, metrics.json (and compare.md) into --out
Every step records its result in the work dir; --resume skips finished steps (until one has to run: the steps after
it run again) and resumes an interrupted training from its checkpoint.

  --quick          the CI-sized recipe (6,000 poems, a few dozen steps per stage; ≤ 10 min on 2 cores)
  --out DIR        where the model ships (default models/yangtuo-poetry; --quick: WORK/out)
  --work-dir DIR   intermediate files (default /tmp/yangtuo-make-model[-quick])
  --base DIR       babyllama105 folder (default $YANGTUO_TESTDATA/models/babyllama105, else ../shared/data/…)
  --resume         continue a previous run in the same work dir
  -t, --threads N  training threads (default 2)
  -h, --help       show this help`;

/** What each finished step recorded (state.json in the work dir). */
interface State {
  recipe: string;
  done: Record<string, Record<string, unknown>>;
  startedAt: string;
  elapsedS: number;
  /** CPU model, its SIMD flags and the Deno version of the first run */
  host?: string;
  /** later invocations: ISO time + flags */
  history?: string[];
}

/**
 * The Deno every step runs under: the one on PATH, as `deno task` itself is (the task grants --allow-run=deno,grep
 * only; Deno.execPath() would be the resolved binary, which that grant does not name when deno is a symlink).
 */
const DENO = "deno";

/** "AMD EPYC … (avx2 avx512f …), Deno 2.9.6": /proc/cpuinfo through grep (Deno needs --allow-all to read /proc). */
async function hostInfo(): Promise<string> {
  const grep = async (re: string) => {
    try {
      const r = await new Deno.Command("grep", { args: ["-m1", re, "/proc/cpuinfo"], stdout: "piped", stderr: "null" })
        .output();
      return new TextDecoder().decode(r.stdout).replace(/^[^:]*:\s*/, "").trim();
    } catch {
      return "";
    }
  };
  const model = (await grep("model name")) || "unknown CPU";
  const flags = (await grep("^flags")).split(/\s+/).filter((f) => /^(avx2|avx512f|avx512_vnni|avx_vnni|amx)/.test(f));
  return `${model}${flags.length ? ` (${flags.join(" ")})` : ""}, ${navigator.hardwareConcurrency} CPUs, ` +
    `Deno ${Deno.version.deno}`;
}

function log(msg: string) {
  console.error(msg);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Path of cli.ts (next to src/). */
function cliPath(): string {
  return new URL("../../cli.ts", import.meta.url).pathname;
}

/** Runs `deno run <perms> cli.ts <args>` with stdout/stderr passed through; throws UserError on failure. */
async function runCli(perms: string[], args: string[], what: string): Promise<void> {
  const cmd = new Deno.Command(DENO, {
    args: ["run", "--no-prompt", ...perms, cliPath(), ...args],
    stdout: "inherit",
    stderr: "inherit",
    stdin: "null",
  });
  const status = await cmd.spawn().status;
  if (!status.success) {
    throw new UserError(
      `Cannot finish step "${what}": \`${args[0]}\` exited with code ${status.code}`,
      "read its error above; fix it and rerun with --resume",
    );
  }
}

/** Finds the Deno npm cache folder of chinese-poetry@2.0.1 (`deno info --json`), caching it when `fetch`. */
export async function findPoetryPackage(fetch: boolean): Promise<string | null> {
  const info = await new Deno.Command(DENO, { args: ["info", "--json"], stdout: "piped", stderr: "null" })
    .output();
  const npmCache = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache as string;
  const dir = `${npmCache}/registry.npmjs.org/${POETRY_PACKAGE}/${POETRY_VERSION}`;
  if (await exists(`${dir}/dist/quantangshi`)) return dir;
  if (!fetch) return null;
  log(`caching npm:${POETRY_PACKAGE}@${POETRY_VERSION} (~40 MB download, once)…`);
  const tmp = await Deno.makeTempDir({ prefix: "yangtuo-poetry-" });
  try {
    await Deno.writeTextFile(`${tmp}/x.ts`, `import "npm:${POETRY_PACKAGE}@${POETRY_VERSION}";\n`);
    const r = await new Deno.Command(DENO, {
      args: ["cache", "--no-config", "--no-lock", `${tmp}/x.ts`],
      cwd: tmp,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!r.success) return null;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  return await exists(`${dir}/dist/quantangshi`) ? dir : null;
}

/** Reads every poet.tang.N.json of the package (in file-number order) and cleans the records. */
export async function readTangPoems(packageDir: string): Promise<{ raw: number; poems: Poem[] }> {
  const dir = `${packageDir}/dist/quantangshi`;
  const files: { n: number; name: string }[] = [];
  for await (const e of Deno.readDir(dir)) {
    const m = /^poet\.tang\.(\d+)\.json$/.exec(e.name);
    if (m) files.push({ n: Number(m[1]), name: e.name });
  }
  files.sort((a, b) => a.n - b.n);
  let raw = 0;
  const poems: Poem[] = [];
  for (const f of files) {
    const records = JSON.parse(await Deno.readTextFile(`${dir}/${f.name}`)) as PoetryRecord[];
    if (!Array.isArray(records)) throw new UserError(`Cannot read "${dir}/${f.name}": expected a JSON array`);
    raw += records.length;
    for (const r of records) {
      const p = cleanPoem(r);
      if (p) poems.push(p);
    }
  }
  return { raw, poems: dedupePoems(poems) };
}

async function readFamous(packageDir: string): Promise<Poem[]> {
  const path = `${packageDir}/dist/quantangshi/唐诗三百首.json`;
  if (!await exists(path)) return [];
  const records = JSON.parse(await Deno.readTextFile(path)) as PoetryRecord[];
  return Array.isArray(records) ? records.map(cleanPoem).filter((p): p is Poem => p !== null) : [];
}

function lastEval(csv: string): { first: number; last: number; firstTrain: number; lastTrain: number } {
  const rows = csv.trim().split("\n").slice(1).map((l) => l.split(","));
  const evals = rows.filter((r) => r[6] !== "" && r[6] !== undefined).map((r) => Number(r[6]));
  const train = rows.filter((r) => r[1] !== "nan").map((r) => Number(r[1]));
  // mean of the first and last tenth of the training losses (single steps are noisy)
  const k = Math.max(1, Math.floor(train.length / 10));
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  return {
    first: evals[0],
    last: evals.at(-1)!,
    firstTrain: mean(train.slice(0, k)),
    lastTrain: mean(train.slice(-k)),
  };
}

/** The SFT prompt (build_dataset.py's template) of an instruction, as the evaluation feeds it. */
function evalPrompt(r: AlpacaRecord): string {
  return alpacaPrompt(r);
}

/** Form-following of replies to held-out poem requests, with the sampling settings in `sampling`. */
export interface FormEval {
  model: string;
  prompts: number;
  follows: number;
  lineLengthOk: number;
  examples: { instruction: string; reply: string; follows: boolean }[];
  seconds: number;
}

export const EVAL_SAMPLING = { temperature: 0.5, topK: 40, topP: 0.95, repeatPenalty: 1.0, maxNewTokens: 120 };

/** Generates a reply to each request with the model at `path` and checks its form. */
export async function evaluateForm(
  path: string,
  requests: readonly AlpacaRecord[],
  seed: number,
  threads: number,
): Promise<FormEval> {
  const t0 = performance.now();
  const engine = await loadEngine(path, { threads });
  try {
    const tok = engine.tokenizer;
    if (!tok) throw new UserError(`Cannot evaluate "${path}": the GGUF has no tokenizer`);
    const ctx = engine.contextSize;
    let follows = 0, lineOk = 0;
    const examples: FormEval["examples"] = [];
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i];
      const form = requestedForm(r.instruction)!;
      const ids = tok.encode(evalPrompt(r), { bos: true });
      const room = Math.max(0, Math.min(EVAL_SAMPLING.maxNewTokens, ctx - ids.length));
      const sampler = new Sampler({
        temperature: EVAL_SAMPLING.temperature,
        topK: EVAL_SAMPLING.topK,
        topP: EVAL_SAMPLING.topP,
        repeatPenalty: EVAL_SAMPLING.repeatPenalty,
        seed: seed + i,
      });
      const out = await generate(engine, sampler, ids.slice(-(ctx - 1)), { maxTokens: Math.max(1, room) });
      const reply = tok.decode(out.ids).trim();
      const c = checkForm(reply, form);
      if (c.follows) follows++;
      if (c.lineLengthOk) lineOk++;
      if (examples.length < 8) examples.push({ instruction: r.instruction, reply, follows: c.follows });
    }
    return {
      model: path,
      prompts: requests.length,
      follows,
      lineLengthOk: lineOk,
      examples,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    engine.close();
  }
}

/** Reads babyllama's tokenizer as an engine would, for the base evaluation (it has no Chinese). */
export async function tokenizerOf(path: string) {
  return tokenizerFromSentencePiece(readSentencePieceModel(await Deno.readFile(path)));
}

async function sha256(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultBaseDir(): string {
  const data = Deno.env.get("YANGTUO_TESTDATA") ?? new URL("../../../shared/data", import.meta.url).pathname;
  return `${data}/models/babyllama105`;
}

/** `make-model` entry point. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    quick: { type: "boolean", default: false },
    out: { type: "string" },
    "work-dir": { type: "string" },
    base: { type: "string" },
    resume: { type: "boolean", default: false },
    threads: { type: "string", short: "t" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`make-model takes no positional arguments, got "${positionals[0]}"`);
  const recipe = values.quick ? QUICK_RECIPE : FULL_RECIPE;
  const threads = intFlag(values.threads, "--threads", 2, 1);
  if (threads > 2) throw new UsageError("--threads expects 1 or 2 (the training kernels use at most 2)");
  const work = values["work-dir"] ?? (values.quick ? "/tmp/yangtuo-make-model-quick" : "/tmp/yangtuo-make-model");
  const out = values.out ?? (values.quick ? `${work}/out` : "models/yangtuo-poetry");
  const baseDir = values.base ?? defaultBaseDir();
  const baseBin = `${baseDir}/model5000.bin`;
  const baseTok = `${baseDir}/tok105.model`;
  if (!await exists(baseBin) || !await exists(baseTok)) {
    throw new UserError(
      `Cannot find babyllama105 in "${baseDir}": expected model5000.bin and tok105.model`,
      "pass --base DIR or set YANGTUO_TESTDATA to the shared data folder",
    );
  }

  const statePath = `${work}/state.json`;
  let state: State;
  if (await exists(statePath)) {
    if (!values.resume) {
      throw new UserError(
        `Cannot start: "${work}" holds a previous run`,
        "add --resume to continue it, or remove the folder (or pass another --work-dir)",
      );
    }
    state = JSON.parse(await Deno.readTextFile(statePath)) as State;
    if (state.recipe !== recipe.name) {
      throw new UserError(`Cannot resume: "${work}" holds a ${state.recipe} run, this is ${recipe.name}`);
    }
    (state.history ??= []).push(`${new Date().toISOString().slice(0, 16)}Z make-model ${args.join(" ")}`);
  } else {
    await Deno.mkdir(work, { recursive: true });
    state = { recipe: recipe.name, done: {}, startedAt: new Date().toISOString(), elapsedS: 0 };
  }
  state.host ??= await hostInfo();
  const t0 = performance.now();
  const elapsedBefore = state.elapsedS;
  const save = async () => {
    state.elapsedS = elapsedBefore + (performance.now() - t0) / 1000;
    await writeFileAtomic(statePath, (s) => s.write(new TextEncoder().encode(JSON.stringify(state, null, 1))));
  };
  const steps = ["corpus", "base", "tokenizer", "stage1", "stage2", "sft", "merge", "evaluate", "compare", "ship"];
  // once a step runs, every later step runs again too (its inputs may have changed)
  let rerun = false;
  const step = async (name: string, fn: () => Promise<Record<string, unknown>>) => {
    const i = steps.indexOf(name) + 1;
    if (state.done[name] && !rerun) {
      log(`[${i}/${steps.length}] ${name}: done (resumed)`);
      return;
    }
    rerun = true;
    const s0 = performance.now();
    log(`[${i}/${steps.length}] ${name}…`);
    const result = await fn();
    result.seconds = Math.round((performance.now() - s0) / 100) / 10;
    state.done[name] = result;
    await save();
    log(`[${i}/${steps.length}] ${name}: done in ${formatDuration(result.seconds as number)}`);
  };

  const sys = "--allow-sys=cpus,systemMemoryInfo,statfs";
  const rw = ["--allow-read", `--allow-write=${work}`, "--allow-env", sys];
  const corpusDir = `${work}/corpus`;
  const tokDir = `${work}/tokenizer`;
  const baseGguf = `${work}/base.gguf`;
  const trainFlags = (r: { steps: number; lr: number }) => [
    "--per-device-train-batch-size",
    String(recipe.batchSize),
    "--gradient-accumulation-steps",
    String(recipe.gradAccum),
    "--max-steps",
    String(r.steps),
    "--learning-rate",
    String(r.lr),
    "--warmup-ratio",
    "0.05",
    "--seed",
    String(recipe.seed),
    "--threads",
    String(threads),
    "--save-steps",
    "25",
    "--logging-steps",
    "10",
    "--eval-steps",
    String(Math.max(10, Math.floor(r.steps / 4))),
    "--max-eval-samples",
    "32",
    "--save-format",
    "safetensors",
  ];
  /** Runs a training command, resuming when its folder holds a checkpoint of an unfinished run. */
  const train = async (dir: string, args: string[], what: string) => {
    const resume = await exists(`${dir}/trainer_state.ckpt`);
    const extra = resume ? ["--resume"] : (await exists(dir) ? ["--force"] : []);
    await runCli(rw, [...args, "--output-dir", dir, ...extra], what);
  };

  await step("corpus", async () => {
    const pkg = await findPoetryPackage(true);
    if (!pkg) {
      throw new UserError(
        `Cannot find npm:${POETRY_PACKAGE}@${POETRY_VERSION} in the Deno npm cache`,
        `run \`deno cache --no-config npm:${POETRY_PACKAGE}@${POETRY_VERSION}\` with network access, then --resume`,
      );
    }
    const { raw, poems } = await readTangPoems(pkg);
    const heldOut = poems.filter((p) => isHeldOut(p, recipe.heldOutPerMille));
    let trainPoems = poems.filter((p) => !isHeldOut(p, recipe.heldOutPerMille));
    if (recipe.maxPoems > 0) trainPoems = trainPoems.slice(0, recipe.maxPoems);
    const heldOutText = recipe.maxPoems > 0 ? heldOut.slice(0, Math.ceil(recipe.maxPoems / 50)) : heldOut;
    const famous = await readFamous(pkg);
    const ins = generateInstructions(trainPoems, heldOut, {
      seed: recipe.seed,
      maxPerKind: recipe.sft.maxPerKind,
      maxHeldOut: recipe.heldOutInstructions,
      famous,
    });
    await Deno.mkdir(corpusDir, { recursive: true });
    const enc = new TextEncoder();
    const write = (name: string, text: string) =>
      writeFileAtomic(`${corpusDir}/${name}`, (s) => s.write(enc.encode(text)));
    await write("train.txt", trainPoems.map(poemPretrainText).join("\n") + "\n");
    await write("heldout.txt", heldOutText.map(poemPretrainText).join("\n") + "\n");
    await write("sft_train.json", JSON.stringify(ins.train, null, 0));
    await write("sft_heldout.json", JSON.stringify(ins.heldOut, null, 0));
    const requests = ins.heldOut.filter((r) => requestedForm(r.instruction) !== null).slice(0, recipe.evalPrompts);
    await write("eval_requests.json", JSON.stringify(requests, null, 0));
    await write(
      "compare_prompts.txt",
      [...requests.slice(0, 6).map((r) => r.instruction), "你好", "你是誰？"].join("\n") + "\n",
    );
    const chars = trainPoems.reduce((n, p) => n + poemPretrainText(p).length, 0);
    log(
      `corpus: ${raw} records → ${poems.length} clean poems; train ${trainPoems.length} (${chars} chars), ` +
        `held-out ${heldOutText.length}; SFT ${ins.train.length} records, held-out ${ins.heldOut.length} ` +
        `(${requests.length} poem requests evaluated)`,
    );
    return {
      package: `${POETRY_PACKAGE}@${POETRY_VERSION}`,
      rawRecords: raw,
      cleanPoems: poems.length,
      trainPoems: trainPoems.length,
      trainChars: chars,
      heldOutPoems: heldOutText.length,
      sftTrain: ins.train.length,
      sftHeldOut: ins.heldOut.length,
      evalRequests: requests.length,
    };
  });

  await step("base", async () => {
    await runCli(
      ["--allow-read", `--allow-write=${work}`, "--allow-env", sys],
      ["convert", baseBin, baseGguf, "--outtype", "f32", "--tokenizer", baseTok, "--force"],
      "base",
    );
    return { gguf: baseGguf, sha256: await sha256(baseBin) };
  });

  await step("tokenizer", async () => {
    await Deno.mkdir(tokDir, { recursive: true });
    await runCli(
      ["--allow-read", `--allow-write=${work}`, "--allow-env=YANGTUO_PROGRESS,YANGTUO_DEBUG"],
      [
        "train-tokenizer",
        `--input=${corpusDir}/train.txt`,
        `--model_prefix=${tokDir}/zh_poetry_sp`,
        `--vocab_size=${recipe.vocabSize}`,
        "--model_type=bpe",
        `--character_coverage=${recipe.characterCoverage}`,
        // tok105 does not normalize; NFKC would turn "，" into "," and the merged model would never see a comma
        "--normalization_rule_name=identity",
      ],
      "tokenizer",
    );
    await runCli(
      ["--allow-read", `--allow-write=${work}`],
      [
        "merge-tokenizer",
        "--base",
        baseTok,
        "--add",
        `${tokDir}/zh_poetry_sp.model`,
        // tok105 has no byte pieces: without them llama.cpp aborts on any character outside the vocabulary
        // (newlines included), and SentencePiece would read such characters as <unk>
        "--byte-fallback",
        "--output-dir",
        tokDir,
        "--force",
      ],
      "tokenizer",
    );
    const tok = await tokenizerOf(`${tokDir}/tokenizer.model`);
    const held = await Deno.readTextFile(`${corpusDir}/heldout.txt`);
    const lines = held.split("\n").filter((l) => l !== "");
    let nTok = 0, nUnk = 0, nChars = 0;
    for (const l of lines) {
      const ids = tok.encode(l, { bos: false });
      nTok += ids.length;
      nUnk += ids.filter((i) => i === 0).length;
      nChars += [...l].length;
    }
    return {
      vocabSize: tok.vocabSize,
      heldOutCharsPerToken: nChars / nTok,
      heldOutUnkRate: nUnk / nTok,
      tokenizerSha256: await sha256(`${tokDir}/tokenizer.model`),
    };
  });

  const pretrainArgs = (stage: number, base: string) => [
    "pretrain",
    "--stage",
    String(stage),
    "--base-model",
    base,
    "--tokenizer",
    `${tokDir}/tokenizer.model`,
    "--data",
    `${corpusDir}/train.txt`,
    "--block-size",
    String(recipe.blockSize),
    "--validation-split-percentage",
    "0.01",
  ];
  const perplexity = async (model: string): Promise<number> => {
    const cmd = new Deno.Command(DENO, {
      args: [
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-env",
        "--allow-sys=cpus,systemMemoryInfo",
        cliPath(),
        "perplexity",
        "-m",
        model,
        "-f",
        `${corpusDir}/heldout.txt`,
        "-c",
        String(recipe.blockSize),
        "-t",
        String(threads),
        "--json",
      ],
      stdout: "piped",
      stderr: "inherit",
    });
    const r = await cmd.output();
    if (!r.success) throw new UserError(`Cannot measure perplexity of "${model}"`);
    return JSON.parse(new TextDecoder().decode(r.stdout)).perplexity as number;
  };
  const mergeTo = async (loras: string[], outDir: string, quant: string, what: string) => {
    await runCli(rw, [
      "merge",
      "--base-model",
      baseGguf,
      "--lora-model",
      loras.join(","),
      "--output-dir",
      outDir,
      "--quant",
      quant,
      "--force",
    ], what);
    for await (const e of Deno.readDir(outDir)) if (e.name.endsWith(".gguf")) return `${outDir}/${e.name}`;
    throw new UserError(`Cannot find the merged GGUF in "${outDir}"`);
  };

  /** A pre-training stage: train into pt_stageN, merge it onto its base (f32), measure the fixed-split perplexity. */
  const pretrainStage = async (stage: 1 | 2, base: string, extra: string[], steps: number) => {
    const what = `stage${stage}`;
    const dir = `${work}/pt_stage${stage}`;
    await train(dir, [...pretrainArgs(stage, base), ...extra], what);
    const l = lastEval(await Deno.readTextFile(`${dir}/loss.csv`));
    const model = await mergeTo([dir], `${work}/merged_stage${stage}`, "f32", what);
    return {
      steps,
      evalLossBefore: l.first,
      evalLossAfter: l.last,
      trainLossFirst: l.firstTrain,
      trainLossLast: l.lastTrain,
      heldOutPerplexity: await perplexity(model),
      model,
      adapter: dir,
    };
  };

  await step("stage1", () => pretrainStage(1, baseGguf, trainFlags(recipe.stage1), recipe.stage1.steps));

  await step("stage2", () =>
    pretrainStage(2, state.done.stage1.model as string, [
      "--lora-rank",
      String(recipe.stage2.rank),
      "--lora-alpha",
      String(recipe.stage2.alpha),
      ...trainFlags(recipe.stage2),
    ], recipe.stage2.steps));

  await step("sft", async () => {
    const dir = `${work}/sft`;
    await train(dir, [
      "sft",
      "--base-model",
      state.done.stage2.model as string,
      "--tokenizer",
      `${tokDir}/tokenizer.model`,
      "--data",
      `${corpusDir}/sft_train.json`,
      "--validation-file",
      `${corpusDir}/sft_heldout.json`,
      "--max-seq-length",
      String(recipe.sft.maxSeqLength),
      "--lora-rank",
      String(recipe.sft.rank),
      "--lora-alpha",
      String(recipe.sft.alpha),
      ...trainFlags(recipe.sft),
    ], "sft");
    const l = lastEval(await Deno.readTextFile(`${dir}/loss.csv`));
    return {
      steps: recipe.sft.steps,
      evalLossStage2Model: l.first,
      evalLossAfter: l.last,
      trainLossFirst: l.firstTrain,
      trainLossLast: l.lastTrain,
      adapter: dir,
    };
  });

  await step("merge", async () => {
    // Chinese-Alpaca-Plus order: base, then the pre-training LoRA, then the SFT LoRA
    const loras = [`${work}/pt_stage2`, `${work}/sft`];
    const q8 = await mergeTo(loras, `${work}/merged_q8_0`, "q8_0", "merge");
    const q4 = `${work}/yangtuo-poetry-q4_0.gguf`;
    await runCli(rw, ["quantize", q8, q4, "q4_0", "--allow-requantize", "--force"], "merge");
    const f32 = await mergeTo(loras, `${work}/merged_f32`, "f32", "merge");
    return { q8_0: q8, q4_0: q4, f32 };
  });

  await step("evaluate", async () => {
    const requests = JSON.parse(await Deno.readTextFile(`${corpusDir}/eval_requests.json`)) as AlpacaRecord[];
    const m = state.done.merge;
    const pplF32 = await perplexity(m.f32 as string);
    const pplQ8 = await perplexity(m.q8_0 as string);
    const pplQ4 = await perplexity(m.q4_0 as string);
    log(`form evaluation: ${requests.length} held-out poem requests, base then final (Q8_0)…`);
    const base = await evaluateForm(baseGguf, requests, recipe.seed, threads);
    log(`  base: ${base.follows}/${base.prompts} follow the form`);
    const final = await evaluateForm(m.q8_0 as string, requests, recipe.seed, threads);
    log(`  final: ${final.follows}/${final.prompts} follow the form (${final.lineLengthOk} with right line lengths)`);
    const q4 = await evaluateForm(m.q4_0 as string, requests, recipe.seed, threads);
    log(`  final Q4_0: ${q4.follows}/${q4.prompts} follow the form`);
    return { perplexityFinalF32: pplF32, perplexityQ8_0: pplQ8, perplexityQ4_0: pplQ4, base, final, finalQ4_0: q4 };
  });

  await step("compare", async () => {
    // the seed's 系统效果 table: base vs final on held-out prompts, same sampling settings
    await Deno.mkdir(out, { recursive: true });
    await runCli(
      ["--allow-read", `--allow-write=${out}`, "--allow-env", "--allow-sys=cpus,systemMemoryInfo"],
      [
        "compare",
        "-m",
        baseGguf,
        "-m",
        state.done.merge.q8_0 as string,
        "-f",
        `${corpusDir}/compare_prompts.txt`,
        "-o",
        `${out}/compare.md`,
        "-n",
        "80",
        "--seed",
        String(recipe.seed),
        "-t",
        String(threads),
      ],
      "compare",
    );
    return { report: `${out}/compare.md` };
  });

  await step("ship", async () => {
    await Deno.mkdir(out, { recursive: true });
    const m = state.done.merge;
    const names = { q8: "yangtuo-poetry-q8_0.gguf", q4: "yangtuo-poetry-q4_0.gguf" };
    await Deno.copyFile(m.q8_0 as string, `${out}/${names.q8}.tmp`);
    await Deno.rename(`${out}/${names.q8}.tmp`, `${out}/${names.q8}`);
    await Deno.copyFile(m.q4_0 as string, `${out}/${names.q4}.tmp`);
    await Deno.rename(`${out}/${names.q4}.tmp`, `${out}/${names.q4}`);
    const sums = { [names.q8]: await sha256(`${out}/${names.q8}`), [names.q4]: await sha256(`${out}/${names.q4}`) };
    state.elapsedS = elapsedBefore + (performance.now() - t0) / 1000;
    const metrics = { recipe, state: state.done, sha256: sums, wallTimeS: state.elapsedS };
    await writeFileAtomic(
      `${out}/metrics.json`,
      (s) => s.write(new TextEncoder().encode(JSON.stringify(metrics, null, 1) + "\n")),
    );
    await writeFileAtomic(
      `${out}/PROVENANCE.md`,
      (s) => s.write(new TextEncoder().encode(provenance(recipe, state, sums, values.quick === true))),
    );
    return { out, sha256: sums };
  });
  await save();
  log(`make-model: done in ${formatDuration(state.elapsedS)}; shipped in ${out}`);
  return 0;
}

function pct(n: number, d: number): string {
  return `${n}/${d} (${(100 * n / Math.max(1, d)).toFixed(0)} %)`;
}

/** PROVENANCE.md from the recorded state. */
export function provenance(recipe: Recipe, state: State, sums: Record<string, string>, quick: boolean): string {
  type Row = Record<string, number & string>;
  const d = state.done as Record<string, Row>;
  const c = d.corpus, t = d.tokenizer, s1 = d.stage1, s2 = d.stage2, sft = d.sft;
  const ev = d.evaluate as unknown as Row & { base: FormEval; final: FormEval; finalQ4_0: FormEval };
  const f = (x: number) => Number(x).toFixed(3);
  const cpu = state.host ?? "unknown host";
  const stepSeconds = Object.values(state.done).reduce((n, r) => n + (Number(r.seconds) || 0), 0);
  return `# yangtuo-poetry: provenance

A Chinese (classical poetry) Alpaca made by yangtuo from an English base, the seed's recipe in miniature.

- **Base** ("the original LLaMA"): babyllama105 (\`../shared/data/models/babyllama105\`: model5000.bin + tok105.model,
  MIT; English TinyStories, 105-piece vocabulary, dim 128, 5 layers, 256 positions).
- **Corpus**: 全唐詩 (\`dist/quantangshi/poet.tang.*.json\`) from npm \`${c.package}\` (MIT), read from the Deno npm
  cache. Traditional characters kept as the source has them (no conversion). ${c.rawRecords} records →
  ${c.cleanPoems} clean deduplicated poems (notes removed, ideograph-only lines, ≤ 120 chars); training
  ${c.trainPoems} poems (${c.trainChars} chars), held-out ${c.heldOutPoems} poems (2 % by FNV-1a hash of
  title|author|text). 唐詩三百首 (same package) gives the "who wrote X" records.
- **Recipe**: \`deno task make-model${quick ? " --quick" : ""}\` (${recipe.name}), seed ${recipe.seed}.
- **Tokenizer**: \`train-tokenizer\` BPE, vocab ${recipe.vocabSize}, character coverage ${recipe.characterCoverage},
  identity normalization; \`merge-tokenizer --byte-fallback\` onto tok105 → ${t.vocabSize} pieces (the 256 byte pieces
  included: llama.cpp needs them) (sha256 ${t.tokenizerSha256}).
  Held-out: ${f(t.heldOutCharsPerToken)} chars/token, unk rate ${(100 * t.heldOutUnkRate).toFixed(2)} %.
- **Training** (batch ${recipe.batchSize} × accumulation ${recipe.gradAccum}, block ${recipe.blockSize}, cosine, warmup 5 %):

| stage | trains | steps | lr | train loss first→last 10 % | held-out loss (pretrain split) before→after | held-out ppl (fixed split) |
| --- | --- | ---: | ---: | --- | --- | ---: |
| 1 | embed_tokens + lm_head | ${s1.steps} | ${recipe.stage1.lr} | ${f(s1.trainLossFirst)} → ${f(s1.trainLossLast)} | ${
    f(s1.evalLossBefore)
  } → ${f(s1.evalLossAfter)} | ${f(s1.heldOutPerplexity)} |
| 2 | LoRA r ${recipe.stage2.rank} (all 7 targets) + embeddings | ${s2.steps} | ${recipe.stage2.lr} | ${
    f(s2.trainLossFirst)
  } → ${f(s2.trainLossLast)} | ${f(s2.evalLossBefore)} → ${f(s2.evalLossAfter)} | ${f(s2.heldOutPerplexity)} |
| SFT | LoRA r ${recipe.sft.rank} + embeddings | ${sft.steps} | ${recipe.sft.lr} | ${f(sft.trainLossFirst)} → ${
    f(sft.trainLossLast)
  } | held-out instructions: stage-2 model ${f(sft.evalLossStage2Model)} → SFT ${f(sft.evalLossAfter)} | |

- **Merge**: base + pt LoRA (stage 2, whose embeddings include stage 1's) + SFT LoRA, in that order, → Q8_0, then
  Q4_0 (\`quantize --allow-requantize\`). Held-out perplexity: F32 ${f(ev.perplexityFinalF32)}, Q8_0 ${
    f(ev.perplexityQ8_0)
  }, Q4_0 ${f(ev.perplexityQ4_0)}.
- **Form-following** (held-out poem requests "寫一首題為《X》的五言絕句" etc., titles never seen in training; a reply
  follows when it has exactly the requested lines of exactly 5/7 ideographs; temp ${EVAL_SAMPLING.temperature},
  top-k ${EVAL_SAMPLING.topK}, top-p ${EVAL_SAMPLING.topP}, no repeat penalty): base ${
    pct(ev.base.follows, ev.base.prompts)
  }, final Q8_0 ${pct(ev.final.follows, ev.final.prompts)} (right line lengths ${
    pct(ev.final.lineLengthOk, ev.final.prompts)
  }), final Q4_0 ${pct(ev.finalQ4_0.follows, ev.finalQ4_0.prompts)}.
- **sha256**: ${Object.entries(sums).map(([k, v]) => `\`${k}\` ${v}`).join(", ")}
- **Wall time**: ${formatDuration(stepSeconds)} for the recipe's steps as shipped (their recorded times summed);
  ${formatDuration(state.elapsedS)} elapsed over every invocation in this work dir (re-runs included), on ${cpu}
  (shared with other jobs; noisy).${
    (state.history ?? []).length > 0
      ? `\n- **Invocations** (after the first): ${(state.history ?? []).map((h) => `\`${h}\``).join("; ")}`
      : ""
  }
- **Base vs final** on held-out prompts: [compare.md](compare.md) (\`deno task compare\`, same sampling settings).
`;
}
