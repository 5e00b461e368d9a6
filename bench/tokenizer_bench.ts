/**
 * Tokenizer benchmark: encode throughput (MB/s of UTF-8 input and tokens/s) of the Chinese-LLaMA tokenizer on
 * ≥ 1 MB of seeded mixed Chinese/English text, a quadratic-behaviour guard (1 MB of Chinese with no spaces, and
 * its 256 KB prefix: the time ratio must stay far below the 16× a quadratic algorithm would need), and the baseline
 * in the same run: SentencePiece's own C++ library via /usr/bin/python3 + python3-sentencepiece (skipped with a
 * message when `import sentencepiece` fails). Before timing, our ids are checked equal to SentencePiece's.
 * Text: sentences built from chinese_sp's Chinese pieces and LLaMA's English word pieces with Zipf-like sampling.
 * Run: deno bench --allow-read --allow-env --allow-run bench/tokenizer_bench.ts   (needs ../shared/data)
 */
import { mulberry32 } from "../tests/_rand.ts";
import { readSentencePieceModel } from "../src/formats/sentencepiece_model.ts";
import { type Tokenizer, tokenizerFromSentencePiece } from "../src/tokenizer/mod.ts";
import { hostInfo } from "./_host.ts";

const root = (Deno.env.get("YANGTUO_TESTDATA") ?? new URL("../../shared/data", import.meta.url).pathname).replace(
  /\/$/,
  "",
);
const MODEL = `${root}/models/tokenizers/chinese-llama/tokenizer.model`;
const ZH = `${root}/models/tokenizers/chinese_sp/chinese_sp.model`;
const EN = `${root}/models/tokenizers/llama/tokenizer.model`;

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** ≥ `minBytes` of mixed text: Chinese sentences (with ，。) and English sentences, ~60% Chinese by bytes. */
function mixedText(minBytes: number, seed: number): string {
  const zh = readSentencePieceModel(Deno.readFileSync(ZH)).pieces.map((p) => p.piece.replace(/^▁/, ""))
    .filter((p) => /^[\u4e00-\u9fff]+$/.test(p));
  const en = readSentencePieceModel(Deno.readFileSync(EN)).pieces.map((p) => p.piece)
    .filter((p) => /^▁[a-z]{2,}$/.test(p)).map((p) => p.slice(1));
  const r = mulberry32(seed);
  const zipf = <T>(a: T[]) => a[Math.floor(a.length * r() ** 3)];
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < minBytes) {
    let s: string;
    if (r() < 0.5) {
      s = "";
      const n = 6 + Math.floor(r() * 24);
      for (let i = 0; i < n; i++) s += zipf(zh) + (r() < 0.12 ? "，" : "");
      s += r() < 0.2 ? "：" + (1900 + Math.floor(r() * 125)) + "年。" : "。";
    } else {
      const n = 5 + Math.floor(r() * 18);
      const words = Array.from({ length: n }, () => zipf(en));
      words[0] = words[0][0].toUpperCase() + words[0].slice(1);
      s = words.join(" ") + (r() < 0.3 ? ", " + Math.floor(r() * 1000) + " items." : ".") + " ";
    }
    if (r() < 0.1) s += "\n";
    parts.push(s);
    bytes += new TextEncoder().encode(s).length;
  }
  return parts.join("");
}

/** Chinese only, no spaces or newlines at all: one 1 MB BPE segment. */
function noSpaceText(minBytes: number, seed: number): string {
  const zh = readSentencePieceModel(Deno.readFileSync(ZH)).pieces.map((p) => p.piece.replace(/^▁/, ""))
    .filter((p) => /^[\u4e00-\u9fff]+$/.test(p));
  const r = mulberry32(seed);
  let s = "";
  while (s.length * 3 < minBytes) s += zh[Math.floor(zh.length * r() ** 3)] + (r() < 0.1 ? "，" : "");
  return s;
}

const SP_SCRIPT = `
import sys, time, json
import sentencepiece as spm
model, reps = sys.argv[1], int(sys.argv[2])
text = sys.stdin.buffer.read().decode("utf-8")
sp = spm.SentencePieceProcessor(model_file=model)
ids = sp.encode(text)
best = 1e9
for _ in range(reps):
    t = time.perf_counter(); sp.encode(text); best = min(best, time.perf_counter() - t)
json.dump({"ids": ids, "seconds": best, "version": spm.__version__}, sys.stdout)
`;

async function sentencePiece(
  text: string,
  reps: number,
): Promise<{ ids: number[]; seconds: number; version: string } | string> {
  try {
    const child = new Deno.Command("/usr/bin/python3", {
      args: ["-c", SP_SCRIPT, MODEL, String(reps)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
    const r = await child.output();
    if (r.code !== 0) return new TextDecoder().decode(r.stderr).trim().split("\n").pop() ?? "failed";
    return JSON.parse(new TextDecoder().decode(r.stdout));
  } catch (e) {
    return (e as Error).message;
  }
}

function best(tok: Tokenizer, text: string, reps: number): { seconds: number; ids: number[] } {
  let ids: number[] = [];
  let bestS = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    ids = tok.encode(text, { bos: false });
    bestS = Math.min(bestS, (performance.now() - t) / 1000);
  }
  return { seconds: bestS, ids };
}

function fresh(): Tokenizer {
  return tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(MODEL)));
}

if (!exists(MODEL) || !exists(ZH)) {
  console.warn(`skip: tokenizer bench needs ${MODEL} and ${ZH} (set YANGTUO_TESTDATA)`);
} else {
  const text = mixedText(1 << 20, 42);
  const nBytes = new TextEncoder().encode(text).length;
  const mb = nBytes / 1e6;
  const tok = fresh();
  const cold = fresh(); // segment cache empty: the first encode of the text
  const t0 = performance.now();
  const coldIds = cold.encode(text, { bos: false });
  const coldS = (performance.now() - t0) / 1000;
  const warm = best(tok, text, 5);
  const rows: string[][] = [];
  const row = (name: string, seconds: number, tokens: number) =>
    rows.push([name, (mb / seconds).toFixed(2), (tokens / seconds / 1e6).toFixed(2), (seconds * 1000).toFixed(0)]);
  row("yangtuo encode, first pass (cold cache)", coldS, coldIds.length);
  row("yangtuo encode, best of 5", warm.seconds, warm.ids.length);
  const sp = await sentencePiece(text, 5);
  if (typeof sp === "string") {
    console.warn(
      `skip baseline: SentencePiece via /usr/bin/python3 unavailable (${sp}); apt-get install python3-sentencepiece`,
    );
  } else {
    if (JSON.stringify(sp.ids) !== JSON.stringify(warm.ids)) {
      throw new Error("ids differ from SentencePiece: no numbers");
    }
    row(`SentencePiece ${sp.version} C++ (python3), best of 5 (baseline)`, sp.seconds, sp.ids.length);
  }
  // quadratic guard
  const big = noSpaceText(1 << 20, 7);
  const small = big.slice(0, big.length >> 2);
  const guardTok = fresh();
  best(guardTok, small, 1); // warm the JIT and merge cache
  const tBig = best(guardTok, big, 3), tSmall = best(guardTok, small, 3);
  const ratio = tBig.seconds / tSmall.seconds;
  const bigMb = new TextEncoder().encode(big).length / 1e6;
  row(`yangtuo, ${bigMb.toFixed(2)} MB Chinese with no spaces`, tBig.seconds, tBig.ids.length);
  const spBig = await sentencePiece(big, 2);
  if (typeof spBig !== "string") {
    if (JSON.stringify(spBig.ids) !== JSON.stringify(tBig.ids)) {
      throw new Error("no-space ids differ from SentencePiece");
    }
    row(`SentencePiece, same no-space text (baseline)`, spBig.seconds, spBig.ids.length);
  }
  console.error(hostInfo().line);
  console.error(`\nChinese-LLaMA tokenizer (49,953), ${mb.toFixed(2)} MB mixed zh/en text, ${warm.ids.length} tokens`);
  console.error("| encoder | MB/s | M tokens/s | ms |\n| --- | ---: | ---: | ---: |");
  for (const r of rows) console.error(`| ${r.join(" | ")} |`);
  console.error(`quadratic guard: 4x the no-space input took ${ratio.toFixed(2)}x the time (quadratic would be ~16x)`);
  if (ratio > 10) throw new Error(`BPE looks quadratic: ratio ${ratio.toFixed(1)}`);

  Deno.bench({
    name: "encode 1 MB mixed zh/en (Chinese-LLaMA)",
    group: "tokenizer",
    baseline: true,
    fn: () => {
      tok.encode(text);
    },
  });
  Deno.bench({
    name: "encode 1 MB Chinese without spaces",
    group: "tokenizer",
    fn: () => {
      tok.encode(big);
    },
  });
  const dec = warm.ids;
  Deno.bench({
    name: "decode the 1 MB text's ids",
    group: "tokenizer",
    fn: () => {
      tok.decode(dec);
    },
  });
}
