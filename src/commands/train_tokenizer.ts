/**
 * `train-tokenizer --input FILE[,FILE…] --model_prefix PREFIX [--vocab_size N] [--model_type bpe|unigram|char|word] …`:
 * SentencePiece training with spm_train's flags as spm_train spells them (`--name=value` or `--name value`,
 * underscores; kebab-case aliases; `--noflag` for false). Streams the inputs line by line (memory bounded by
 * --input_sentence_size), shows progress on stderr, writes PREFIX.model and PREFIX.vocab atomically.
 * see: google/sentencepiece src/spm_train_main.cc (v0.1.97)
 */
import { UsageError, UserError } from "../core/errors.ts";
import { decodeLine, decodeLines, SentenceSelector } from "../tokenizer/train/corpus.ts";
import { type TrainProgress, trainSentencePiece } from "../tokenizer/train/trainer.ts";
import {
  defaultTrainerOptions,
  NORMALIZER_SPEC_FIELDS,
  type SpecField,
  TRAINER_SPEC_FIELDS,
  trainerConfig,
  type TrainerOptions,
} from "../tokenizer/train/trainer_spec.ts";
import { interruptibleSink } from "./_interrupt.ts";
import { formatBytes, Progress, progressEnabled } from "./_progress.ts";

/** Flags that spm_train takes besides the spec fields. */
const EXTRA_FLAGS: Record<string, string> = {
  control_symbols_file: "load control symbols from a file (one per line)",
  user_defined_symbols_file: "load user defined symbols from a file (one per line)",
  required_chars_file: "load required characters from a file",
  random_seed: "seed of the random generator (unused: the reservoir sample uses SentencePiece's fixed seed)",
  denormalization_rule_tsv: "not supported (must be empty)",
};

const FIELDS = new Map<string, SpecField>(
  [...TRAINER_SPEC_FIELDS, ...NORMALIZER_SPEC_FIELDS].map((f) => [f.name, f]),
);

function usage(): string {
  const rows: [string, string][] = [];
  for (const f of [...TRAINER_SPEC_FIELDS, ...NORMALIZER_SPEC_FIELDS]) {
    const d = Array.isArray(f.default) ? `"${f.default.join(",")}"` : JSON.stringify(f.default);
    rows.push([`--${f.name}`, `${f.help} (${f.kind === "strings" ? "string" : f.kind}; default ${d})`]);
  }
  for (const [k, v] of Object.entries(EXTRA_FLAGS)) rows.push([`--${k}`, v]);
  const width = Math.max(...rows.map((r) => r[0].length));
  return `usage: train-tokenizer --input FILE[,FILE…] --model_prefix PREFIX [spm_train flags]

Trains a SentencePiece model as spm_train does (BPE pieces, order and scores are identical to spm_train 0.1.97's)
and writes PREFIX.model and PREFIX.vocab. Flags are spm_train's: --name=value or --name value; kebab-case aliases
(--vocab-size); booleans as --flag, --flag=false or --noflag. Example, the Chinese-LLaMA 20K vocabulary:

  deno task train-tokenizer --input=zh.txt --model_prefix=chinese_sp --vocab_size=20000 \\
    --model_type=unigram --character_coverage=0.9995 --input_sentence_size=2000000

flags:
${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n")}
  ${"-h, --help".padEnd(width)}  this help`;
}

const TRUE = new Set(["true", "1", "t", "yes", "y"]);
const FALSE = new Set(["false", "0", "f", "no", "n"]);

/** Parses spm_train-style arguments into trainer options plus the extra flags. Throws UsageError. */
export function parseSpmFlags(
  args: string[],
): { options: TrainerOptions; extra: Record<string, string>; help: boolean } {
  const options = defaultTrainerOptions();
  const extra: Record<string, string> = {};
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-h" || arg === "--help" || arg === "-help" || arg === "--helpfull") {
      help = true;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-" || arg === "--") {
      throw new UsageError(`unexpected argument "${arg}" (spm_train flags are --name=value)`);
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    let name = (eq >= 0 ? body.slice(0, eq) : body).replaceAll("-", "_");
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    let field = FIELDS.get(name);
    if (!field && !(name in EXTRA_FLAGS) && name.startsWith("no") && value === undefined) {
      const f = FIELDS.get(name.slice(2));
      if (f?.kind === "bool") {
        field = f;
        name = f.name;
        value = "false";
      }
    }
    if (!field && !(name in EXTRA_FLAGS)) {
      const all = [...FIELDS.keys(), ...Object.keys(EXTRA_FLAGS)];
      const close = all.find((k) => k.includes(name) || name.includes(k));
      throw new UsageError(`unknown flag --${name}${close ? ` (did you mean --${close}?)` : ""}`);
    }
    if (field?.kind === "bool") {
      if (value === undefined) {
        const nextArg = args[i + 1]?.toLowerCase();
        if (nextArg !== undefined && (TRUE.has(nextArg) || FALSE.has(nextArg))) {
          value = nextArg;
          i++;
        } else value = "true";
      }
      const v = value.toLowerCase();
      if (!TRUE.has(v) && !FALSE.has(v)) throw new UsageError(`--${name} expects true or false, got "${value}"`);
      options[name] = TRUE.has(v);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= args.length) throw new UsageError(`--${name} needs a value`);
      value = args[++i];
    }
    if (!field) {
      extra[name] = value;
      continue;
    }
    switch (field.kind) {
      case "string":
      case "model_type":
        options[name] = value;
        break;
      case "strings":
        options[name] = value === "" ? [] : splitCsv(value);
        break;
      case "int32":
      case "uint64": {
        const n = Number(value);
        const ok = Number.isSafeInteger(n) &&
          (field.kind === "int32" ? n >= -(2 ** 31) && n < 2 ** 31 : n >= 0);
        if (!ok || value.trim() === "") {
          throw new UsageError(`--${name} expects an integer, got "${value}"`);
        }
        options[name] = n;
        break;
      }
      case "float": {
        const n = Number(value);
        if (!Number.isFinite(n) || value.trim() === "") {
          throw new UsageError(`--${name} expects a number, got "${value}"`);
        }
        options[name] = n;
        break;
      }
    }
  }
  return { options, extra, help };
}

/** absl's StrSplitAsCSV: commas separate, double quotes protect commas ("" is a quote). */
function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') cur += s[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function readLines(path: string): string[] {
  return Deno.readTextFileSync(path).split("\n").map((l) => l.replace(/\r$/, "")).filter((l, i, a) =>
    !(i === a.length - 1 && l === "")
  );
}

/**
 * Streams `path` in batches of lines (split at \n only, as std::getline), one batch per chunk read, with the byte
 * length of each line; invalid UTF-8 bytes become INVALID_BYTE marks (see decodeLine).
 */
async function* fileLines(path: string, onBytes: (n: number) => void): AsyncGenerator<[string[], number[]]> {
  using file = await Deno.open(path, { read: true });
  // 64 KiB: each chunk's text stays a young-generation string (a 1 MiB one goes to V8's large-object space, which
  // only a full GC frees: 55 MB of input peaked at 193 MiB instead of 134 with --input_sentence_size)
  const buf = new Uint8Array(1 << 16);
  let carry = new Uint8Array(0);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    onBytes(n);
    let chunk = buf.subarray(0, n);
    if (carry.length) {
      const joined = new Uint8Array(carry.length + n);
      joined.set(carry);
      joined.set(chunk, carry.length);
      chunk = joined;
    }
    const last = chunk.lastIndexOf(0x0a);
    if (last >= 0) yield decodeLines(chunk.subarray(0, last + 1));
    carry = chunk.slice(last + 1);
  }
  if (carry.length) yield [[decodeLine(carry)], [carry.length]];
}

/**
 * A stage-by-stage progress line on stderr ("bpe merges 700/915 (2.1s, ETA 0.8s)", the unigram EM with its
 * objective), redrawn at most 8 times a second; the ETA assumes the rest of the stage goes at its pace so far.
 */
function stageProgress(): { update: TrainProgress; end: () => void } {
  const enabled = progressEnabled();
  const enc = new TextEncoder();
  let stage = "";
  const t0 = performance.now();
  // a stage starts when the one before it reported last (its first report comes after its first unit of work)
  let last = 0, prev = t0, stageStart = t0;
  const draw = (text: string) => Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${text}`));
  return {
    update: (name, done, total, detail) => {
      if (!enabled) return;
      const now = performance.now();
      const before = prev;
      prev = now;
      if (name !== stage) {
        if (stage) Deno.stderr.writeSync(enc.encode("\n"));
        stage = name;
        stageStart = before;
      } else if (now - last < 125 && done < total) return;
      last = now;
      const eta = done > 0 && total > done
        ? `, ETA ${((now - stageStart) * (total - done) / done / 1000).toFixed(1)}s`
        : "";
      draw(`${name} ${done}/${total}${detail ? `, ${detail}` : ""} (${((now - t0) / 1000).toFixed(1)}s${eta})`);
    },
    end: () => {
      if (enabled && stage) Deno.stderr.writeSync(enc.encode("\n"));
    },
  };
}

export async function run(args: string[]): Promise<number> {
  const { options, extra, help } = parseSpmFlags(args);
  if (help) {
    console.log(usage());
    return 0;
  }
  const inputs = options.input as string[];
  const prefix = options.model_prefix as string;
  if (inputs.length === 0 || inputs.every((f) => f === "")) throw new UsageError("--input is required");
  if (prefix === "") throw new UsageError("--model_prefix is required");
  if (extra.denormalization_rule_tsv) throw new UsageError("--denormalization_rule_tsv is not supported");
  for (
    const [flag, key] of [["control_symbols_file", "control_symbols"], [
      "user_defined_symbols_file",
      "user_defined_symbols",
    ]] as const
  ) {
    if (extra[flag]) options[key] = [...(options[key] as string[]), ...readLines(extra[flag])];
  }
  if (extra.required_chars_file) options.required_chars = readLines(extra.required_chars_file).join("");
  try {
    trainerConfig(options);
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message.replace(/^Cannot train: /, ""));
    throw e;
  }
  const slash = prefix.lastIndexOf("/");
  const dir = slash > 0 ? prefix.slice(0, slash) : slash === 0 ? "/" : ".";
  try {
    if (!Deno.statSync(dir).isDirectory) {
      throw new UserError(`Cannot write "${prefix}.model": "${dir}" is not a folder`);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot write "${prefix}.model": folder "${dir}" does not exist`, `mkdir -p ${dir}`);
    }
    throw e;
  }

  // Fail before training, not after, when the task's scoped permissions do not cover the output folder.
  if (Deno.permissions.querySync({ name: "write", path: dir }).state !== "granted") {
    throw new UserError(
      `Cannot write "${prefix}.model": no write permission for "${dir}"`,
      `the task may write only under the current folder; elsewhere run: deno run --allow-read --allow-write=${dir} ` +
        "cli.ts train-tokenizer …",
    );
  }

  // 1. Read: stream every input through the selector (bounded memory with --input_sentence_size).
  let totalBytes = 0;
  for (const f of inputs) {
    try {
      const st = Deno.statSync(f);
      if (!st.isFile) {
        throw new UserError(`Cannot read input "${f}": not a file`, "--input takes comma separated files");
      }
      totalBytes += st.size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new UserError(`Cannot read input "${f}": no such file`, "--input takes comma separated paths");
      }
      throw e;
    }
  }
  const selector = new SentenceSelector(trainerConfig(options));
  const tsv = options.input_format === "tsv";
  const utf8 = new TextEncoder(); // a tsv word's byte length (its line's is the word and the count)
  const t0 = performance.now();
  const readBar = new Progress("read", totalBytes);
  let stop = false;
  let lineNo = 0;
  for (const f of inputs) {
    for await (const [lines, lineBytes] of fileLines(f, (n) => readBar.add(n))) {
      for (let k = 0; k < lines.length && !stop; k++) {
        const line = lines[k], nBytes = lineBytes[k];
        lineNo++;
        let text = line, freq = 1;
        if (tsv) {
          const parts = line.split("\t");
          const n = Number(parts[1]);
          if (parts.length !== 2 || !Number.isSafeInteger(n) || n < 1) {
            throw new UserError(
              `Cannot read "${f}" line ${lineNo}: expected "word<TAB>freq" with freq ≥ 1`,
              "--input_format=tsv takes one word and its count per line",
            );
          }
          text = parts[0];
          freq = n;
        }
        if (!selector.add(text, tsv ? utf8.encode(text).length : nBytes, freq)) stop = true;
      }
      if (stop) break;
    }
    if (stop) break;
  }
  readBar.finish();
  const st = selector.stats;
  console.error(
    `loaded ${selector.sentences.length} of ${st.total} sentences from ${formatBytes(totalBytes)}` +
      (st.tooLong ? `; skipped ${st.tooLong} longer than --max_sentence_length` : "") +
      (st.withUnkChar ? `; skipped ${st.withUnkChar} containing U+2585` : ""),
  );

  // 2. Train.
  let result;
  const progress = stageProgress();
  try {
    result = await trainSentencePiece(selector, options, progress.update);
  } catch (e) {
    if (e instanceof RangeError) {
      throw new UserError(
        e.message,
        /vocabulary size/i.test(e.message)
          ? "change --vocab_size (or --character_coverage) as the message says"
          : "check the flags against --help",
      );
    }
    throw e;
  } finally {
    progress.end();
  }
  const c = result.corpus;
  console.error(
    `${c.nSentences} sentences, ${c.nUnits} distinct ${options.split_by_whitespace ? "words" : "sentences"}, ` +
      `alphabet ${c.alphabet} (coverage ${(c.coveredChars / Math.max(1, c.allChars)).toFixed(6)}), ` +
      `${result.nPieces} pieces in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );

  // 3. Write both files atomically (Ctrl+C removes the temp file).
  for (
    const [path, bytes] of [
      [`${prefix}.model`, result.modelBytes],
      [`${prefix}.vocab`, new TextEncoder().encode(result.vocabText)],
    ] as const
  ) {
    const { sink, release } = interruptibleSink(path);
    try {
      sink.write(bytes);
      sink.commit();
    } catch (e) {
      sink.abort();
      throw e;
    } finally {
      release();
    }
  }
  console.log(`wrote ${prefix}.model and ${prefix}.vocab (${result.nPieces} pieces)`);
  return 0;
}
