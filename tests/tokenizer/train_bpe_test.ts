/**
 * BPE training against the oracle spm_train 0.1.97 (Debian `sentencepiece`): the same corpus and flags must give a
 * byte-identical PREFIX.model (pieces, order, scores, trainer_spec, normalizer_spec) and PREFIX.vocab. Corpora:
 * generated Chinese (tests/tokenizer/_train_corpus.ts), English license texts Debian ships, and a mix; vocab sizes
 * 100 … 8,000; byte_fallback on and off; the flags that change the rules. Skips when spm_train is absent.
 */
import { assertBytesEqual, assertEquals } from "../_assert.ts";
import { run } from "../../src/commands/train_tokenizer.ts";
import { chineseCorpus, englishCorpus, mixedCorpus } from "./_train_corpus.ts";
import { hasSpmTrain, spmTrain } from "./_spm_oracle.ts";

const dir = Deno.makeTempDirSync({ prefix: "yangtuo-train-bpe-" });
const corpora: Record<string, () => string[] | undefined> = {
  zh: () => chineseCorpus(1, 4000),
  zh_small: () => chineseCorpus(3, 3000, 60),
  en: () => englishCorpus(2_000_000),
  en_mid: () => englishCorpus(1_200_000),
  en_small: () => englishCorpus(240_000),
  mixed: () => {
    const en = englishCorpus(400_000);
    return en && mixedCorpus(2, en);
  },
  mixed_small: () => {
    const en = englishCorpus(300_000);
    if (!en) return undefined;
    const zh = chineseCorpus(4, en.length, 12);
    return en.flatMap((l, i) => [l, zh[i]]);
  },
};
/** English lines with invalid UTF-8 (truncated, overlong, surrogate, stray bytes) spliced into every 7th line. */
function badBytesCorpus(): Uint8Array | undefined {
  const en = englishCorpus(240_000);
  if (!en) return undefined;
  const enc = new TextEncoder();
  const bad = [[0xe4, 0xb8], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0x80, 0x80], [0xf4, 0x90, 0x80, 0x80]];
  const parts: number[] = [];
  en.forEach((line, i) => {
    const b = enc.encode(line);
    if (i % 7 === 3 && b.length > 4) parts.push(...b.subarray(0, 4), ...bad[i % bad.length], ...b.subarray(4));
    else parts.push(...b);
    parts.push(0x0a);
  });
  return Uint8Array.from(parts);
}
/**
 * Chinese lines (~290 kB) cut by the reader's 64 KiB chunks inside characters: a 3-byte character across every chunk
 * boundary, a truncated one (invalid) and a \r\n just before every other, and no final newline.
 */
function chunkEdgesCorpus(): Uint8Array {
  const text = new TextEncoder().encode(chineseCorpus(5, 2400, 300).join("\n"));
  const out: number[] = [];
  let next = 1 << 16;
  for (const b of text) {
    if (out.length === next - 41) out.push(0xe4, 0xb8, 0x0d, 0x0a); // truncated character, then CR LF
    if (out.length === next - 1) {
      out.push(0xe4, 0xb8, 0xad); // 中 across the boundary
      next += 1 << 16;
    }
    out.push(b);
  }
  return Uint8Array.from(out);
}
const written = new Map<string, string | undefined>();
function corpusFile(name: string): string | undefined {
  if (!written.has(name) && name === "en_bad") {
    const bytes = badBytesCorpus();
    if (bytes) Deno.writeFileSync(`${dir}/en_bad.txt`, bytes);
    written.set(name, bytes ? `${dir}/en_bad.txt` : undefined);
  }
  if (!written.has(name) && name === "chunk_edges") {
    Deno.writeFileSync(`${dir}/chunk_edges.txt`, chunkEdgesCorpus());
    written.set(name, `${dir}/chunk_edges.txt`);
  }
  if (!written.has(name)) {
    const lines = corpora[name]();
    let path: string | undefined;
    if (lines) {
      path = `${dir}/${name}.txt`;
      Deno.writeTextFileSync(path, lines.join("\n") + "\n");
    } else console.warn(`skip: corpus "${name}" unavailable (no /usr/share/common-licenses)`);
    written.set(name, path);
  }
  return written.get(name);
}

/** Trains with both and asserts identical files. The model_prefix is the same string for both (it is stored). */
async function same(corpus: string, flags: string[]): Promise<void> {
  const input = corpusFile(corpus);
  if (!input) return;
  const prefix = `${dir}/m`;
  const args = [`--input=${input}`, "--model_type=bpe", ...flags];
  const want = await spmTrain(prefix, args);
  Deno.removeSync(`${prefix}.model`);
  Deno.removeSync(`${prefix}.vocab`);
  const code = await run([...args, `--model_prefix=${prefix}`]);
  assertEquals(code, 0);
  const gotVocab = Deno.readTextFileSync(`${prefix}.vocab`);
  if (gotVocab !== want.vocab) {
    const a = gotVocab.split("\n"), b = want.vocab.split("\n");
    const i = a.findIndex((l, k) => l !== b[k]);
    throw new Error(`vocab differs at line ${i + 1}: ours "${a[i]}", spm_train "${b[i]}"`);
  }
  assertBytesEqual(Deno.readFileSync(`${prefix}.model`), want.model, "PREFIX.model");
}

const CASES: [string, string[]][] = [
  ["zh_small", ["--vocab_size=100"]],
  ["zh_small", ["--vocab_size=1000", "--byte_fallback=true"]],
  ["zh", ["--vocab_size=8000"]],
  ["zh", ["--vocab_size=4000", "--byte_fallback", "--split_digits=true"]],
  ["en", ["--vocab_size=100"]],
  ["en", ["--vocab_size=1000", "--byte_fallback=true"]],
  ["en", ["--vocab_size=8000"]],
  // frequencies tie at SentencePiece's active-set cut (1.2 MB) or run out entirely (240 kB, freq 0 at the end)
  ["en_mid", ["--vocab_size=8000"]],
  ["en_small", ["--vocab_size=8000"]],
  ["en_mid", ["--vocab_size=5000", "--split_by_whitespace=false"]],
  ["mixed_small", ["--vocab_size=100"]],
  ["mixed_small", ["--vocab_size=1000"]],
  ["mixed", ["--vocab_size=8000", "--byte_fallback=true"]],
  ["en", [
    "--vocab_size=1500",
    "--normalization_rule_name=identity",
    "--user_defined_symbols=GNU,License",
    "--control_symbols=[SEP]",
  ]],
  ["en", [
    "--vocab_size=1500",
    "--treat_whitespace_as_suffix",
    "--max_sentencepiece_length=6",
    "--character_coverage=0.98",
  ]],
  ["zh", [
    "--vocab_size=3000",
    "--split_by_whitespace=false",
    "--add_dummy_prefix=false",
    "--remove_extra_whitespaces=false",
  ]],
  ["en", ["--vocab_size=1000", "--input_sentence_size=5000"]],
  ["en", ["--vocab_size=1000", "--input_sentence_size=5000", "--shuffle_input_sentence=false"]],
  ["en", [
    "--vocab_size=1000",
    "--pad_id=3",
    "--bos_id=-1",
    "--unk_id=1",
    "--eos_id=0",
    "--split_by_number=false",
    "--split_by_unicode_script=false",
  ]],
  // invalid UTF-8: each bad byte is U+FFFD, untouched by nmt_nfkc (a literal U+FFFD maps to a space)
  ["en_bad", ["--vocab_size=2000", "--character_coverage=1"]],
  ["en_bad", ["--vocab_size=2000", "--character_coverage=1", "--normalization_rule_name=identity"]],
  // the reader's chunk boundaries inside characters, invalid bytes and CR LF next to them, no final newline
  ["chunk_edges", ["--vocab_size=1200", "--character_coverage=1", "--byte_fallback"]],
  ["chunk_edges", ["--vocab_size=800", "--normalization_rule_name=identity", "--split_by_whitespace=false"]],
  // the CHAR and WORD trainers (a later --model_type wins, as in spm_train)
  ["en_small", ["--vocab_size=500", "--model_type=char"]],
  ["en_small", ["--vocab_size=2000", "--model_type=word"]],
];

Deno.test({
  name: "train-tokenizer --model_type=bpe (and char, word) writes the same .model and .vocab bytes as spm_train",
  ignore: !hasSpmTrain(),
  async fn(t) {
    for (const [corpus, flags] of CASES) {
      await t.step(`${corpus} ${flags.join(" ")}`, () => same(corpus, flags));
    }
  },
});

Deno.test({
  name: "train-tokenizer reads spm_train's flag spellings (--name value, kebab-case, --noflag) alike",
  ignore: !hasSpmTrain(),
  async fn() {
    const input = corpusFile("zh_small");
    if (!input) return;
    const prefix = `${dir}/k`;
    const want = await spmTrain(prefix, [
      `--input=${input}`,
      "--model_type=bpe",
      "--vocab_size=300",
      "--add_dummy_prefix=false",
    ]);
    assertEquals(
      await run([
        "--input",
        input,
        "--model-type",
        "BPE",
        "--vocab-size",
        "300",
        "--noadd_dummy_prefix",
        "--model_prefix",
        prefix,
      ]),
      0,
    );
    assertBytesEqual(Deno.readFileSync(`${prefix}.model`), want.model);
  },
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});
