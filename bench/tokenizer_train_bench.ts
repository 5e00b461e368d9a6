/**
 * Trainer benchmark: `train-tokenizer` against the baseline spm_train 0.1.97 (Debian `sentencepiece`) in the same
 * run, same input, same flags and --num_threads=2 for both, each as a subprocess (Deno start-up included) under
 * /usr/bin/time: wall time best of N, interleaved (spm, ours, spm, ours, …), and the CPU time (user + sys) of the
 * best run of each; printed as a table with the CPU model and flags. Before timing, each output is compared with
 * spm_train's: BPE must be byte-identical (a wrong trainer never gets a number); for unigram, identity is reported.
 * Inputs: the generated Chinese corpus and the English licence texts of tests/tokenizer/_train_corpus.ts, and 4 MB of
 * 全唐詩 lines from npm chinese-poetry@2.0.1 when it is in the Deno npm cache (as `make-model` reads it), written to
 * /tmp. Also the memory bound: peak RSS of runs on the English corpus ×4 and ×16 with --input_sentence_size.
 * Opt-in (minutes): YANGTUO_BENCH_TRAIN=1 deno bench --allow-read --allow-write=/tmp --allow-env --allow-run
 * bench/tokenizer_train_bench.ts. Shared hosts are noisy: compare within a row.
 */
import { chineseCorpus, englishCorpus } from "../tests/tokenizer/_train_corpus.ts";
import { hostInfo } from "./_host.ts";

const enabled = Deno.env.get("YANGTUO_BENCH_TRAIN") === "1";
const hasSpm = (() => {
  try {
    Deno.statSync("/usr/bin/spm_train");
    Deno.statSync("/usr/bin/time");
    return true;
  } catch {
    return false;
  }
})();
if (!enabled) console.warn("skip: tokenizer_train_bench (set YANGTUO_BENCH_TRAIN=1)");
else if (!hasSpm) {
  console.warn(
    "skip: tokenizer_train_bench needs /usr/bin/spm_train and /usr/bin/time (apt-get install sentencepiece time)",
  );
}

// A placeholder so `deno bench` accepts the module when the opt-in is off; the measurement runs at load time.
Deno.bench({ name: "tokenizer_train_bench (opt-in, see header)", ignore: true, fn() {} });

const dir = enabled && hasSpm ? Deno.makeTempDirSync({ prefix: "yangtuo-train-bench-" }) : "";
const cli = new URL("../cli.ts", import.meta.url).pathname;

function corpusFile(name: string, lines: string[]): string {
  const path = `${dir}/${name}.txt`;
  Deno.writeTextFileSync(path, lines.join("\n") + "\n");
  return path;
}

/** 全唐詩 lines (poems' paragraphs in file order) up to `maxBytes`, or undefined without the npm package. */
async function poetryLines(maxBytes: number): Promise<string[] | undefined> {
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped", stderr: "null" })
    .output();
  const npmCache = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache as string;
  const base = `${npmCache}/registry.npmjs.org/chinese-poetry/2.0.1/dist/quantangshi`;
  let names: string[];
  try {
    names = [...Deno.readDirSync(base)].map((e) => e.name).filter((n) => /^poet\.tang\.\d+\.json$/.test(n));
  } catch {
    return undefined;
  }
  names.sort((a, b) => Number(a.split(".")[2]) - Number(b.split(".")[2]));
  const out: string[] = [];
  let bytes = 0;
  for (const n of names) {
    for (const r of JSON.parse(Deno.readTextFileSync(`${base}/${n}`)) as { paragraphs?: string[] }[]) {
      for (const p of r.paragraphs ?? []) {
        out.push(p);
        bytes += new TextEncoder().encode(p).length + 1;
      }
    }
    if (bytes >= maxBytes) break;
  }
  return out;
}

interface Run {
  wall: number;
  cpu: number;
  rssMiB: number;
}

/** Runs `cmd args` under /usr/bin/time in `cwd`; throws with its stderr when it fails. */
async function timed(cmd: string, args: string[], cwd: string): Promise<Run> {
  const tf = `${dir}/time.txt`;
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "%e %U %S %M", "-o", tf, cmd, ...args],
    cwd,
    env: { YANGTUO_PROGRESS: "0" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr).slice(-300)}`);
  const [e, u, s, kb] = Deno.readTextFileSync(tf).trim().split("\n").pop()!.split(" ").map(Number);
  return { wall: e, cpu: u + s, rssMiB: kb / 1024 };
}

// the same relative prefix "m" for both (the prefix is stored in the model), each in its own folder
const spmDir = `${dir}/spm`, ourDir = `${dir}/ours`;
const spm = (args: string[]) => timed("/usr/bin/spm_train", [...args, "--model_prefix=m"], spmDir);
const ours = (args: string[]) =>
  timed(Deno.execPath(), [
    "run",
    "--allow-read",
    `--allow-write=${ourDir}`,
    cli,
    "train-tokenizer",
    ...args,
    "--model_prefix=m",
  ], ourDir);

interface Case {
  group: string;
  input: () => Promise<string | undefined>;
  flags: string[];
  /** BPE: byte identity with spm_train is required before timing. */
  mustBeIdentical: boolean;
  reps: number;
}

const CASES: Case[] = [
  {
    group: "bpe zh 480 kB vocab 8000",
    input: () => Promise.resolve(corpusFile("zh", chineseCorpus(1, 4000))),
    flags: ["--model_type=bpe", "--vocab_size=8000"],
    mustBeIdentical: true,
    reps: 3,
  },
  {
    group: "bpe en 2 MB vocab 8000",
    input: () => Promise.resolve(corpusFile("en", englishCorpus(2_000_000)!)),
    flags: ["--model_type=bpe", "--vocab_size=8000"],
    mustBeIdentical: true,
    reps: 3,
  },
  {
    group: "unigram zh 480 kB vocab 8000",
    input: () => Promise.resolve(corpusFile("zh_u", chineseCorpus(1, 4000))),
    flags: ["--model_type=unigram", "--vocab_size=8000"],
    mustBeIdentical: false,
    reps: 5,
  },
  {
    group: "unigram en 2 MB vocab 8000",
    input: () => Promise.resolve(corpusFile("en_u", englishCorpus(2_000_000)!)),
    flags: ["--model_type=unigram", "--vocab_size=8000"],
    mustBeIdentical: false,
    reps: 3,
  },
  {
    group: "unigram 全唐詩 4 MB vocab 8000",
    input: async () => {
      const lines = await poetryLines(4_000_000);
      return lines && corpusFile("poetry", lines);
    },
    flags: ["--model_type=unigram", "--vocab_size=8000"],
    mustBeIdentical: false,
    reps: 2,
  },
];

function cpuLine(): string {
  let load = "?";
  try {
    load = Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
  } catch { /* needs --allow-sys=loadavg */ }
  return `${hostInfo().line} | load average ${load}`;
}

const rows: string[] = [];
if (enabled && hasSpm) {
  Deno.mkdirSync(spmDir);
  Deno.mkdirSync(ourDir);
  console.error(cpuLine());
  for (const c of CASES) {
    const input = await c.input();
    if (!input) {
      console.warn(
        `skip: ${c.group} (npm chinese-poetry@2.0.1 is not in the Deno npm cache; deno task make-model caches it)`,
      );
      continue;
    }
    const args = [`--input=${input}`, "--num_threads=2", ...c.flags];
    // validate first
    await spm(args);
    await ours(args);
    const want = Deno.readFileSync(`${spmDir}/m.model`), got = Deno.readFileSync(`${ourDir}/m.model`);
    const identical = got.length === want.length && got.every((b, i) => b === want[i]);
    if (c.mustBeIdentical && !identical) throw new Error(`${c.group}: our model differs from spm_train's; not timing`);
    // Wall time of whole runs, interleaved, best of N; the CPU time and RSS of each side's best run. Deno.bench's own
    // timer is not used: it does not time these multi-second subprocess runs reliably.
    let a: Run | undefined, b: Run | undefined;
    for (let rep = 0; rep < c.reps; rep++) {
      const s = await spm(args);
      if (!a || s.wall < a.wall) a = s;
      const o = await ours(args);
      if (!b || o.wall < b.wall) b = o;
    }
    rows.push(
      `| ${c.group} | ${a!.wall.toFixed(2)} s | ${b!.wall.toFixed(2)} s | **${(b!.wall / a!.wall).toFixed(2)}** | ` +
        `${a!.cpu.toFixed(2)} s | ${b!.cpu.toFixed(2)} s | ${a!.rssMiB.toFixed(0)} / ${b!.rssMiB.toFixed(0)} MiB | ` +
        `${identical ? "yes" : "no"} |`,
    );
    console.error(rows.at(-1));
  }
  // Memory bound: the same 2 MB English corpus 4 and 16 times over; --input_sentence_size keeps 20,000 sentences
  // (sampled: shuffle_input_sentence is on by default), so the last two runs should peak alike.
  const en = englishCorpus(2_000_000)!;
  const big = corpusFile("en_x4", [...en, ...en, ...en, ...en]);
  const huge = corpusFile("en_x16", Array.from({ length: 16 }, () => en).flat());
  const small = corpusFile("en_x1", en);
  const rss = (input: string, extra: string[]) =>
    ours([`--input=${input}`, "--model_type=bpe", "--vocab_size=4000", ...extra]);
  const m1 = await rss(small, []);
  const m4 = await rss(big, []);
  const ms = await rss(big, ["--input_sentence_size=20000"]);
  const ms16 = await rss(huge, ["--input_sentence_size=20000"]);
  console.error(
    `peak RSS (bpe vocab 4000): en 2 MB ${m1.rssMiB.toFixed(0)} MiB; en ×4 (8 MB) ${m4.rssMiB.toFixed(0)} MiB; ` +
      `with --input_sentence_size=20000: en ×4 ${ms.rssMiB.toFixed(0)} MiB (${ms.wall}s), ` +
      `en ×16 (32 MB) ${ms16.rssMiB.toFixed(0)} MiB (${ms16.wall}s)`,
  );
  console.error(cpuLine());
  console.error(
    [
      "| case (--num_threads=2) | spm_train | train-tokenizer | ours / spm | spm CPU | our CPU | RSS spm / ours | identical |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
      ...rows,
    ].join("\n"),
  );
  Deno.removeSync(dir, { recursive: true });
}
