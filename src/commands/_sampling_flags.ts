/**
 * The one option table for the sampling and context flags of every command that runs a model (generate, chat,
 * perplexity, and a later `serve`): the same spellings (llama.cpp's, with its underscore forms), negative values
 * parsed as values (`-c -5`, `--temp -1`), and ranges checked with one message per flag. Also the two limits decided
 * after the model is known: the context size (default min(usual default, the model's context_length), a warning
 * beyond it) and the thread count (capped at the cores and at what the model can split into).
 *
 * To reuse in a new command:
 * ```ts ignore
 * const { values } = parseFlags(withNegativeValues(args, FLAGS), FLAGS); // FLAGS = { ...SAMPLING_FLAGS, ...CONTEXT_FLAGS, … }
 * const s = parseSamplingFlags(values, { ...SAMPLING_DEFAULTS, contextSize: 2048 });
 * ```
 * see: llama.cpp common/common.cpp (gpt_params_parse, 2023)
 */
import { UsageError } from "../core/errors.ts";
import type { Options } from "./_args.ts";

/** Context and thread flags: every command that loads a model takes these. */
export const CONTEXT_FLAGS = {
  "ctx-size": { type: "string", short: "c" },
  ctx_size: { type: "string" },
  threads: { type: "string", short: "t" },
} as const satisfies Options;

/** Sampling flags (with llama.cpp's underscore spellings): generate, chat, serve. */
export const SAMPLING_FLAGS = {
  "n-predict": { type: "string", short: "n" },
  n_predict: { type: "string" },
  temp: { type: "string" },
  "top-k": { type: "string" },
  top_k: { type: "string" },
  "top-p": { type: "string" },
  top_p: { type: "string" },
  "repeat-penalty": { type: "string" },
  repeat_penalty: { type: "string" },
  "repeat-last-n": { type: "string" },
  repeat_last_n: { type: "string" },
  seed: { type: "string", short: "s" },
} as const satisfies Options;

/** The smallest context any command accepts (a prompt template alone needs more). */
export const MIN_CONTEXT = 16;
/** The largest -c accepted before the model is known (2^20 positions; the KV cache check comes at load). */
export const MAX_CONTEXT = 1 << 20;

/** Defaults of the sampling values (llama.cpp's); a command overrides what it must (chat: the seed's). */
export const SAMPLING_DEFAULTS = {
  maxNewTokens: 128,
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1.1,
  repeatLastN: 64,
} as const;

/** The sampler's knobs, as the flags spell them in llama.cpp (--temp, --top-k, --top-p, --repeat-penalty, …). */
export interface SamplerKnobs {
  temperature: number;
  topK: number;
  topP: number;
  repeatPenalty: number;
  repeatLastN: number;
}

/** Defaults a command passes to parseSamplingFlags(). */
export interface SamplingDefaults extends SamplerKnobs {
  /** The usual context size; the model's context_length lowers it (resolveContextSize). */
  contextSize: number;
  maxNewTokens: number;
}

/** The parsed, range-checked values. */
export interface SamplingSettings extends SamplerKnobs {
  /** -c as given, or undefined: then resolveContextSize() picks min(default, the model's context_length). */
  contextSize: number | undefined;
  defaultContextSize: number;
  /** -1 = until EOS or the context is full. */
  maxNewTokens: number;
  /** -1 = random. */
  seed: number;
  /** -t as given, or undefined (all cores); resolveThreads() caps it. */
  threads: number | undefined;
}

type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * Rewrites `-c -5` / `--temp -1` / `-n=-1` to `--ctx-size=-5` / `--temp=-1` / `--n-predict=-1` for the string flags
 * of `options`, so a negative
 * number is read as the flag's value (node's parseArgs would take it for an unknown flag) and range-checked.
 */
export function withNegativeValues(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = args[i + 1];
    const shortEq = /^-([^-])=(.*)$/s.exec(a); // `-n=-1`: node reads "=-1" as the value of -n
    if (shortEq) {
      const name = Object.entries(options).find(([, o]) => o.short === shortEq[1])?.[0];
      if (name !== undefined && options[name]?.type === "string") {
        out.push(`--${name}=${shortEq[2]}`);
        continue;
      }
    }
    if (a.startsWith("-") && !a.includes("=") && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      const name = a.startsWith("--")
        ? a.slice(2)
        : Object.entries(options).find(([, o]) => o.short !== undefined && o.short === a.slice(1))?.[0];
      if (name !== undefined && options[name]?.type === "string") {
        out.push(`--${name}=${next}`);
        i++;
        continue;
      }
    }
    out.push(a);
  }
  return out;
}

function pick(v: FlagValues, ...names: string[]): string | undefined {
  for (const n of names) {
    const x = v[n];
    if (typeof x === "string") return x;
  }
  return undefined;
}

function num(value: string, flag: string, integer: boolean): number {
  const n = value.trim() === "" ? NaN : Number(value);
  if (integer ? !Number.isSafeInteger(n) : !Number.isFinite(n)) {
    throw new UsageError(`${flag} expects ${integer ? "an integer" : "a number"}, got "${value}"`);
  }
  return n;
}

function ranged(
  value: string | undefined,
  flag: string,
  fallback: number,
  o: { integer?: boolean; min?: number; minExclusive?: boolean; max?: number; range: string },
): number {
  if (value === undefined) return fallback;
  const n = num(value, flag, o.integer ?? false);
  const low = o.min === undefined || (o.minExclusive ? n > o.min : n >= o.min);
  const high = o.max === undefined || n <= o.max;
  if (!low || !high) throw new UsageError(`${flag} expects ${o.range}, got "${value}"`);
  return n;
}

/** Parses and range-checks the sampling and context flags (UsageError, exit 2, naming the flag). */
export function parseSamplingFlags(v: FlagValues, d: SamplingDefaults): SamplingSettings {
  const ctx = pick(v, "ctx-size", "ctx_size");
  const threads = pick(v, "threads");
  return {
    contextSize: ctx === undefined ? undefined : ranged(ctx, "--ctx-size", 0, {
      integer: true,
      min: MIN_CONTEXT,
      max: MAX_CONTEXT,
      range: `an integer from ${MIN_CONTEXT} to ${MAX_CONTEXT}`,
    }),
    defaultContextSize: d.contextSize,
    maxNewTokens: ranged(pick(v, "n-predict", "n_predict"), "--n-predict", d.maxNewTokens, {
      integer: true,
      min: -1,
      range: "an integer ≥ -1 (-1 = until EOS)",
    }),
    temperature: ranged(pick(v, "temp"), "--temp", d.temperature, { min: 0, range: "a number ≥ 0 (0 = greedy)" }),
    topK: ranged(pick(v, "top-k", "top_k"), "--top-k", d.topK, {
      integer: true,
      min: 0,
      range: "an integer ≥ 0 (0 = off)",
    }),
    topP: ranged(pick(v, "top-p", "top_p"), "--top-p", d.topP, {
      min: 0,
      minExclusive: true,
      max: 1,
      range: "a number in (0, 1] (1 = off)",
    }),
    repeatPenalty: ranged(pick(v, "repeat-penalty", "repeat_penalty"), "--repeat-penalty", d.repeatPenalty, {
      min: 0,
      minExclusive: true,
      range: "a number > 0 (1 = off)",
    }),
    repeatLastN: ranged(pick(v, "repeat-last-n", "repeat_last_n"), "--repeat-last-n", d.repeatLastN, {
      integer: true,
      min: -1,
      range: "an integer ≥ -1 (-1 = the whole context)",
    }),
    seed: ranged(pick(v, "seed"), "--seed", -1, { integer: true, min: -1, range: "an integer ≥ -1 (-1 = random)" }),
    threads: threads === undefined
      ? undefined
      : ranged(threads, "--threads", 1, { integer: true, min: 1, range: "an integer ≥ 1" }),
  };
}

/** The usage lines of the shared flags, with a command's defaults. */
export function samplingUsage(d: SamplingDefaults, o: { sampling?: boolean } = {}): string {
  const lines = [
    `  -c, --ctx-size N          context size (default ${d.contextSize}, or the model's context_length if smaller)`,
    "  -t, --threads N           threads (default: all cores; capped at the cores and at what the model can use)",
  ];
  if (o.sampling !== false) {
    lines.push(
      `  -n, --n-predict N         tokens to generate, -1 = until EOS (default ${d.maxNewTokens})`,
      `      --temp T              temperature ≥ 0, 0 = greedy (default ${d.temperature})`,
      `      --top-k K             top-k ≥ 0, 0 = off (default ${d.topK})`,
      `      --top-p P             top-p in (0, 1], 1 = off (default ${d.topP})`,
      `      --repeat-penalty R    penalty > 0 on the last --repeat-last-n tokens, 1 = off (default ${d.repeatPenalty})`,
      `      --repeat-last-n N     window of the repeat penalty, -1 = whole context (default ${d.repeatLastN})`,
      "  -s, --seed S              RNG seed, -1 = random (default -1; the seed used is printed)",
    );
  }
  lines.push(
    "llama.cpp's underscore spellings work too (--ctx_size, --n_predict, --top_k, --top_p, --repeat_penalty, …).",
  );
  return lines.join("\n");
}

/**
 * The context size to run with: -c when given (with a warning when it exceeds what the model was trained on),
 * else min(the command's default, the model's context_length).
 */
export function resolveContextSize(
  s: Pick<SamplingSettings, "contextSize" | "defaultContextSize">,
  modelContextLength: number | undefined,
  warn: (message: string) => void,
): number {
  const trained = modelContextLength !== undefined && modelContextLength > 0 ? modelContextLength : undefined;
  if (s.contextSize === undefined) {
    return trained === undefined ? s.defaultContextSize : Math.max(1, Math.min(s.defaultContextSize, trained));
  }
  if (trained !== undefined && s.contextSize > trained) {
    warn(
      `-c ${s.contextSize} exceeds the ${trained} positions the model was trained on: text past position ${trained} ` +
        "is likely to degrade",
    );
  }
  return s.contextSize;
}

/**
 * Threads to run with: -t (default all cores), capped at the available cores and at `modelMax` (the shards the
 * model can be split into); says so through `note` when it caps what the user asked for.
 */
export function resolveThreads(
  requested: number | undefined,
  cores: number,
  modelMax: number,
  note: (message: string) => void,
): number {
  const c = Math.max(1, Math.floor(cores) || 1);
  const m = Math.max(1, Math.floor(modelMax) || 1);
  const want = requested ?? c;
  const n = Math.min(want, c, m);
  if (requested !== undefined && n < requested) {
    note(
      `using ${n} thread(s), not ${requested}: ` +
        (n === c && c <= m ? `this machine has ${c} core(s)` : `the model splits into at most ${m} shard(s)`),
    );
  }
  return n;
}

/** The chat command's defaults (the seed's chat script: -c 2048, --temp 0.2, --repeat_penalty 1.3, …). */
export const CHAT_DEFAULTS: SamplingDefaults = {
  contextSize: 2048,
  maxNewTokens: 256,
  temperature: 0.2,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1.3,
  repeatLastN: 64,
};
