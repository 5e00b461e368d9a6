/**
 * `compare`: the seed's "系统效果" table — the same prompts through two or more models with the same sampling
 * settings (and the same seed per prompt), written as a Markdown table `| prompt | model A | model B |` followed by
 * each model's load time, prompt and generation speed.
 * see: Chinese-LLaMA-Alpaca README (系统效果 tables), src/model/generate.ts
 */
import { UsageError, UserError } from "../core/errors.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { type Engine, loadEngine } from "../model/engine.ts";
import { generate } from "../model/generate.ts";
import { Sampler } from "../sampling/sampler.ts";
import { alpacaPrompt } from "../train/data.ts";
import { floatFlag, intFlag, parseFlags } from "./_args.ts";

/** Sampling defaults: the chat's temperature is too cold for a table of samples; these are llama.cpp main's. */
export const COMPARE_DEFAULTS = { maxNewTokens: 128, temperature: 0.5, topK: 40, topP: 0.95, repeatPenalty: 1.0 };

/** Most prompts read from -f. */
export const MAX_PROMPTS = 1000;

const USAGE = `usage: deno task compare -m A.gguf -m B.gguf [-m C.gguf …] -f prompts.txt [-o report.md] [options]

Runs every prompt (one per line of -f; blank lines and lines starting with # are skipped) through every model with
the same sampling settings and seed, and writes a Markdown table (prompt | model A | model B | …) plus the timing
of each model. Each prompt is wrapped in the seed's Alpaca training template (build_dataset.py), as the SFT data
was; --raw feeds it as a plain completion prompt instead.

  -m, --model PATH        a GGUF model (repeat: two or more)
  -f, --file PATH         prompts, one per line
  -o, --output PATH       write the report here (default: stdout)
  -n, --n-predict N       most tokens per reply (default ${COMPARE_DEFAULTS.maxNewTokens})
      --temp T            temperature, 0 = greedy (default ${COMPARE_DEFAULTS.temperature})
      --top-k K           (default ${COMPARE_DEFAULTS.topK})
      --top-p P           (default ${COMPARE_DEFAULTS.topP})
      --repeat-penalty R  (default ${COMPARE_DEFAULTS.repeatPenalty})
      --seed S            sampling seed; prompt i uses S + i for every model (default 1)
      --raw               no template: the prompt text is completed as is
  -t, --threads N         threads (default: number of CPUs)
  -h, --help              show this help`;

/** One model's replies and timings. */
export interface CompareColumn {
  model: string;
  replies: string[];
  loadMs: number;
  promptTokens: number;
  promptMs: number;
  genTokens: number;
  genMs: number;
}

/** Reads the prompts file: one prompt per line, blank and # lines skipped. */
export function parsePrompts(text: string): string[] {
  const prompts = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  if (prompts.length > MAX_PROMPTS) {
    throw new RangeError(`Cannot read prompts: ${prompts.length} lines exceeds the limit of ${MAX_PROMPTS}`);
  }
  return prompts;
}

/** A table cell: one line, pipes escaped, empty shown as "(empty)". */
export function markdownCell(text: string): string {
  const t = text.replace(/\r?\n/g, "<br>").replace(/\|/g, "\\|").trim();
  return t === "" ? "(empty)" : t;
}

/** The report: the side-by-side table, then a timing table. */
export function compareReport(
  prompts: readonly string[],
  columns: readonly CompareColumn[],
  settings: string,
): string {
  const names = columns.map((c, i) => `${String.fromCharCode(65 + i)}: \`${c.model.split("/").pop()}\``);
  const lines = [
    `| prompt | ${names.join(" | ")} |`,
    `| --- | ${names.map(() => "---").join(" | ")} |`,
    ...prompts.map((p, i) => `| ${markdownCell(p)} | ${columns.map((c) => markdownCell(c.replies[i])).join(" | ")} |`),
    "",
    `Sampling: ${settings}.`,
    "",
    "| model | load | prompt tokens | prompt tok/s | generated tokens | generation tok/s |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...columns.map((c, i) =>
      `| ${names[i]} | ${(c.loadMs / 1000).toFixed(2)} s | ${c.promptTokens} | ${
        (c.promptTokens / Math.max(1e-9, c.promptMs / 1000)).toFixed(1)
      } | ${c.genTokens} | ${(c.genTokens / Math.max(1e-9, c.genMs / 1000)).toFixed(1)} |`
    ),
  ];
  return lines.join("\n") + "\n";
}

async function runModel(
  path: string,
  prompts: readonly string[],
  o: { maxNewTokens: number; temperature: number; topK: number; topP: number; repeatPenalty: number; seed: number },
  raw: boolean,
  threads: number | undefined,
): Promise<CompareColumn> {
  const t0 = performance.now();
  let engine: Engine;
  try {
    engine = await loadEngine(path, { threads });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot open model "${path}": file not found`, "check the paths given with -m");
    }
    throw e;
  }
  const col: CompareColumn = {
    model: path,
    replies: [],
    loadMs: performance.now() - t0,
    promptTokens: 0,
    promptMs: 0,
    genTokens: 0,
    genMs: 0,
  };
  try {
    const tok = engine.tokenizer;
    for (let i = 0; i < prompts.length; i++) {
      const text = raw ? prompts[i] : alpacaPrompt({ instruction: prompts[i], input: "", output: "" });
      let ids = tok.encode(text, { bos: true });
      if (ids.length >= engine.contextSize) ids = ids.slice(ids.length - engine.contextSize + 1);
      const room = Math.min(o.maxNewTokens, engine.contextSize - ids.length);
      const sampler = new Sampler({
        temperature: o.temperature,
        topK: o.topK,
        topP: o.topP,
        repeatPenalty: o.repeatPenalty,
        seed: o.seed + i,
      });
      const r = await generate(engine, sampler, ids, { maxTokens: Math.max(1, room) });
      col.replies.push(tok.decode(r.ids).trim());
      col.promptTokens += ids.length;
      col.promptMs += r.promptMs;
      col.genTokens += r.ids.length;
      col.genMs += r.generateMs;
    }
  } finally {
    engine.close();
  }
  return col;
}

/** `compare` entry point. */
export async function run(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    model: { type: "string", short: "m", multiple: true },
    file: { type: "string", short: "f" },
    output: { type: "string", short: "o" },
    "n-predict": { type: "string", short: "n" },
    temp: { type: "string" },
    "top-k": { type: "string" },
    "top-p": { type: "string" },
    "repeat-penalty": { type: "string" },
    seed: { type: "string" },
    raw: { type: "boolean", default: false },
    threads: { type: "string", short: "t" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const models = v.model ?? [];
  if (models.length < 2) throw new UsageError("compare needs two or more models: -m A.gguf -m B.gguf");
  if (v.file === undefined) throw new UsageError("compare needs prompts: -f prompts.txt (one per line)");
  const d = COMPARE_DEFAULTS;
  const o = {
    maxNewTokens: intFlag(v["n-predict"], "--n-predict", d.maxNewTokens, 1),
    temperature: floatFlag(v.temp, "--temp", d.temperature),
    topK: intFlag(v["top-k"], "--top-k", d.topK),
    topP: floatFlag(v["top-p"], "--top-p", d.topP),
    repeatPenalty: floatFlag(v["repeat-penalty"], "--repeat-penalty", d.repeatPenalty),
    seed: intFlag(v.seed, "--seed", 1, 0),
  };
  if (o.repeatPenalty <= 0) throw new UsageError(`--repeat-penalty expects a number > 0, got ${o.repeatPenalty}`);
  const threads = v.threads === undefined ? undefined : intFlag(v.threads, "--threads", 1, 1);
  let text: string;
  try {
    text = await Deno.readTextFile(v.file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot read prompts "${v.file}": file not found`, "pass a text file with -f");
    }
    throw e;
  }
  const prompts = parsePrompts(text);
  if (prompts.length === 0) throw new UserError(`Cannot compare: "${v.file}" has no prompts`, "one prompt per line");
  const columns: CompareColumn[] = [];
  for (const m of models) {
    console.error(`compare: ${m} (${prompts.length} prompts)…`);
    columns.push(await runModel(m, prompts, o, v.raw, threads));
  }
  const settings = `${v.raw ? "raw prompts" : "Alpaca template"}, temp ${o.temperature}, top-k ${o.topK}, ` +
    `top-p ${o.topP}, repeat-penalty ${o.repeatPenalty}, n-predict ${o.maxNewTokens}, seed ${o.seed} + prompt index`;
  const report = compareReport(prompts, columns, settings);
  if (v.output === undefined) {
    console.log(report);
  } else {
    await writeFileAtomic(v.output, (s) => s.write(new TextEncoder().encode(report)));
    console.error(`wrote ${v.output}`);
  }
  return 0;
}
