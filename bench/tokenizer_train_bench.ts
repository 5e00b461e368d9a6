/**
 * Trainer benchmark: `train-tokenizer` against the baseline spm_train 0.1.97 (Debian `sentencepiece`) in the same
 * run, same input, same flags and --num_threads=2 for both, each as a subprocess (wall time, Deno start-up
 * included; best of 3, interleaved; printed as a table). Before timing, the BPE outputs are checked byte-identical (a wrong trainer never gets a number).
 * Inputs: the generated Chinese corpus and the English license texts of tests/tokenizer/_train_corpus.ts, written
 * to /tmp. Also the memory bound: peak RSS of a run on the English corpus ×4 with --input_sentence_size (via
 * /usr/bin/time). Opt-in (minutes): YANGTUO_BENCH_TRAIN=1 deno bench --allow-read --allow-write=/tmp --allow-env
 * --allow-run bench/tokenizer_train_bench.ts. Shared hosts are noisy: compare the two rows of a group.
 */
import { chineseCorpus, englishCorpus } from "../tests/tokenizer/_train_corpus.ts";

const enabled = Deno.env.get("YANGTUO_BENCH_TRAIN") === "1";
const hasSpm = (() => {
  try {
    Deno.statSync("/usr/bin/spm_train");
    return true;
  } catch {
    return false;
  }
})();
if (!enabled) console.warn("skip: tokenizer_train_bench (set YANGTUO_BENCH_TRAIN=1)");
else if (!hasSpm) console.warn("skip: tokenizer_train_bench needs /usr/bin/spm_train (apt-get install sentencepiece)");

// A placeholder so `deno bench` accepts the module when the opt-in is off; the measurement runs at load time.
Deno.bench({ name: "tokenizer_train_bench (opt-in, see header)", ignore: true, fn() {} });

const dir = enabled && hasSpm ? Deno.makeTempDirSync({ prefix: "yangtuo-train-bench-" }) : "";
const cli = new URL("../cli.ts", import.meta.url).pathname;

function corpusFile(name: string, lines: string[]): string {
  const path = `${dir}/${name}.txt`;
  Deno.writeTextFileSync(path, lines.join("\n") + "\n");
  return path;
}

async function spm(args: string[], prefix: string): Promise<void> {
  const out = await new Deno.Command("/usr/bin/spm_train", { args: [...args, `--model_prefix=${prefix}`] }).output();
  if (out.code !== 0) throw new Error(`spm_train failed: ${new TextDecoder().decode(out.stderr).slice(-300)}`);
}

async function ours(args: string[], prefix: string, timeFile?: string): Promise<void> {
  const deno = [
    "run",
    "--allow-read",
    `--allow-write=${dir}`,
    cli,
    "train-tokenizer",
    ...args,
    `--model_prefix=${prefix}`,
  ];
  const cmd = timeFile
    ? new Deno.Command("/usr/bin/time", { args: ["-f", "%M %e", "-o", timeFile, Deno.execPath(), ...deno] })
    : new Deno.Command(Deno.execPath(), { args: deno, env: { YANGTUO_PROGRESS: "0" } });
  const out = await cmd.output();
  if (out.code !== 0) throw new Error(`train-tokenizer failed: ${new TextDecoder().decode(out.stderr).slice(-300)}`);
}

interface Case {
  group: string;
  input: () => string;
  flags: string[];
  /** Check byte identity with spm_train before timing (BPE). */
  identical: boolean;
}

const CASES: Case[] = [
  {
    group: "bpe zh 480 kB vocab 8000",
    input: () => corpusFile("zh", chineseCorpus(1, 4000)),
    flags: ["--model_type=bpe", "--vocab_size=8000"],
    identical: true,
  },
  {
    group: "bpe en 2 MB vocab 8000",
    input: () => corpusFile("en", englishCorpus(2_000_000)!),
    flags: ["--model_type=bpe", "--vocab_size=8000"],
    identical: true,
  },
  {
    group: "unigram zh 480 kB vocab 8000",
    input: () => corpusFile("zh_u", chineseCorpus(1, 4000)),
    flags: ["--model_type=unigram", "--vocab_size=8000"],
    identical: false,
  },
];

const rows: string[] = [];
if (enabled && hasSpm) {
  for (const c of CASES) {
    const input = c.input();
    const args = [`--input=${input}`, "--num_threads=2", ...c.flags];
    if (c.identical) {
      // validate first: same prefix string for both (it is stored in the model)
      const prefix = `${dir}/v`;
      await spm(args, prefix);
      const want = Deno.readFileSync(`${prefix}.model`);
      await ours(args, prefix);
      const got = Deno.readFileSync(`${prefix}.model`);
      if (got.length !== want.length || got.some((b, i) => b !== want[i])) {
        throw new Error(`${c.group}: our model differs from spm_train's; not timing`);
      }
    }
    // Wall time of whole runs, interleaved (spm, ours, spm, ours, …), best of 3. Deno.bench's own timer is not
    // used: it does not time these multi-second subprocess runs reliably.
    const spmMs: number[] = [], ourMs: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      let t = performance.now();
      await spm(args, `${dir}/spm`);
      spmMs.push(performance.now() - t);
      t = performance.now();
      await ours(args, `${dir}/ours`);
      ourMs.push(performance.now() - t);
    }
    const a = Math.min(...spmMs), b = Math.min(...ourMs);
    rows.push(`| ${c.group} | ${(a / 1000).toFixed(2)} s | ${(b / 1000).toFixed(2)} s | ${(b / a).toFixed(2)} |`);
  }
  // Memory bound: the same 2 MB English corpus four times over; --input_sentence_size keeps 20,000 sentences.
  const en = englishCorpus(2_000_000)!;
  const big = corpusFile("en_x4", [...en, ...en, ...en, ...en]);
  const small = corpusFile("en_x1", en);
  const rss = async (input: string, extra: string[]) => {
    const tf = `${dir}/time.txt`;
    await ours([`--input=${input}`, "--model_type=bpe", "--vocab_size=4000", ...extra], `${dir}/mem`, tf);
    const [kb, secs] = Deno.readTextFileSync(tf).trim().split("\n").pop()!.split(" ").map(Number);
    return { mib: kb / 1024, secs };
  };
  const a = await rss(small, []);
  const b = await rss(big, []);
  const s = await rss(big, ["--input_sentence_size=20000"]);
  console.log(
    `peak RSS (bpe vocab 4000): en 2 MB ${a.mib.toFixed(0)} MiB; en ×4 (8 MB) ${b.mib.toFixed(0)} MiB; ` +
      `en ×4 with --input_sentence_size=20000 ${s.mib.toFixed(0)} MiB (${s.secs}s)`,
  );
  console.log(
    ["| case (--num_threads=2) | spm_train | train-tokenizer | ours / spm |", "| --- | --- | --- | --- |", ...rows]
      .join("\n"),
  );
  Deno.removeSync(dir, { recursive: true });
}
