/**
 * UNIGRAM training against the oracle spm_train / spm_encode 0.1.97 (Debian `sentencepiece`). The bars:
 * spm_encode loads our model and gives exactly our encoder's ids on held-out text; tokens per character on held-out
 * text within 1% of spm_train's model of the same size and flags; ≥ 95% of our pieces in spm_train's vocabulary at
 * 8,000. Beyond them, since the trainer reproduces SentencePiece's float32 EM, its thread split and its quirks, the
 * .model must be byte-identical on these corpora (the same model_prefix string in two folders); and the EM objective
 * our progress reports must be the one spm_train logs. Skips when spm_train is absent.
 */
import { assert, assertBytesEqual, assertEquals } from "../_assert.ts";
import { run } from "../../src/commands/train_tokenizer.ts";
import { readSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import { tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";
import { chineseCorpus, englishCorpus } from "./_train_corpus.ts";
import { hasSpmEncode, hasSpmTrain, spmEncodeIds, spmTrain } from "./_spm_oracle.ts";
import { SentenceSelector } from "../../src/tokenizer/train/corpus.ts";
import { trainSentencePiece } from "../../src/tokenizer/train/trainer.ts";
import { defaultTrainerOptions, trainerConfig } from "../../src/tokenizer/train/trainer_spec.ts";

const dir = Deno.makeTempDirSync({ prefix: "yangtuo-train-unigram-" });

interface Case {
  name: string;
  train: () => string[] | undefined;
  heldOut: () => string[] | undefined;
  flags: string[];
  minOverlap: number;
}

const CASES: Case[] = [
  {
    name: "Chinese, vocab 8000",
    train: () => chineseCorpus(1, 4000),
    heldOut: () => chineseCorpus(1, 4400).slice(4000),
    flags: ["--vocab_size=8000"],
    minOverlap: 0.95,
  },
  {
    name: "English, vocab 4000, byte_fallback",
    train: () => englishCorpus(2_000_000),
    heldOut: () => englishCorpus(2_300_000)?.slice(-3000),
    flags: ["--vocab_size=4000", "--byte_fallback=true"],
    minOverlap: 0.95,
  },
];

for (const c of CASES) {
  Deno.test({
    name: `train-tokenizer --model_type=unigram (${c.name}): spm_encode agrees with our encoder; size and overlap`,
    ignore: !hasSpmTrain() || !hasSpmEncode(),
    async fn() {
      const lines = c.train(), held = c.heldOut();
      if (!lines || !held) return console.warn(`skip: corpus for "${c.name}" unavailable`);
      const input = `${dir}/train.txt`, heldFile = `${dir}/held.txt`;
      Deno.writeTextFileSync(input, lines.join("\n") + "\n");
      const heldLines = held.filter((l) => l.trim() !== "");
      Deno.writeTextFileSync(heldFile, heldLines.join("\n") + "\n");
      const args = [`--input=${input}`, "--model_type=unigram", ...c.flags];
      Deno.mkdirSync(`${dir}/a`, { recursive: true });
      Deno.mkdirSync(`${dir}/b`, { recursive: true });
      const cwd = Deno.cwd();
      try {
        // relative prefix "m": the stored model_prefix is the same string for both
        Deno.chdir(`${dir}/a`);
        await spmTrain("m", args);
        Deno.chdir(`${dir}/b`);
        assertEquals(await run([...args, "--model_prefix=m"]), 0);
      } finally {
        Deno.chdir(cwd);
      }
      assertBytesEqual(Deno.readFileSync(`${dir}/b/m.model`), Deno.readFileSync(`${dir}/a/m.model`), "PREFIX.model");
      Deno.renameSync(`${dir}/a/m.model`, `${dir}/spm.model`);
      Deno.renameSync(`${dir}/a/m.vocab`, `${dir}/spm.vocab`);
      Deno.renameSync(`${dir}/b/m.model`, `${dir}/ours.model`);
      Deno.renameSync(`${dir}/b/m.vocab`, `${dir}/ours.vocab`);

      // 1. SentencePiece loads our model and segments exactly as our encoder.
      const ours = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(`${dir}/ours.model`)));
      const spmIds = await spmEncodeIds(`${dir}/ours.model`, heldFile);
      assertEquals(spmIds.length, heldLines.length);
      for (let i = 0; i < heldLines.length; i++) {
        assertEquals(ours.encode(heldLines[i], { bos: false }), spmIds[i], `held-out line ${i + 1}`);
      }

      // 2. Compression: tokens per character on held-out text, ours vs spm_train's model.
      const theirs = await spmEncodeIds(`${dir}/spm.model`, heldFile);
      const chars = heldLines.reduce((n, l) => n + [...l].length, 0);
      const tpcOurs = spmIds.reduce((n, x) => n + x.length, 0) / chars;
      const tpcSpm = theirs.reduce((n, x) => n + x.length, 0) / chars;
      const rel = tpcOurs / tpcSpm - 1;

      // 3. Piece overlap.
      const spmPieces = new Set(Deno.readTextFileSync(`${dir}/spm.vocab`).split("\n").map((l) => l.split("\t")[0]));
      const ourPieces = Deno.readTextFileSync(`${dir}/ours.vocab`).trimEnd().split("\n").map((l) => l.split("\t")[0]);
      const overlap = ourPieces.filter((p) => spmPieces.has(p)).length / ourPieces.length;
      console.log(
        `${c.name}: tokens/char ours ${tpcOurs.toFixed(5)} spm ${tpcSpm.toFixed(5)} (${(rel * 100).toFixed(2)}%), ` +
          `overlap ${(overlap * 100).toFixed(2)}% of ${ourPieces.length}`,
      );
      assert(Math.abs(rel) <= 0.01, `tokens/char ${tpcOurs} vs spm_train's ${tpcSpm}: ${(rel * 100).toFixed(2)}%`);
      assert(overlap >= c.minOverlap, `overlap ${overlap} < ${c.minOverlap}`);
    },
  });
}

Deno.test({
  name: "trainSentencePiece (unigram) reports SentencePiece's EM objective after every E-step, as spm_train logs it",
  ignore: !hasSpmTrain(),
  async fn() {
    const lines = chineseCorpus(3, 1500);
    const input = `${dir}/obj.txt`;
    Deno.writeTextFileSync(input, lines.join("\n") + "\n");
    const flags = ["--model_type=unigram", "--vocab_size=2000"];
    // spm_train 0.1.97 logs "EM sub_iter=0 size=14712 obj=11.8731 num_tokens=…" after each E-step's M-step
    const { log } = await spmTrain(`${dir}/obj`, [`--input=${input}`, ...flags]);
    const want = [...log.matchAll(/EM sub_iter=\d+ size=(\d+) obj=([-\d.e+]+)/g)].map((
      m,
    ) => [Number(m[1]), Number(m[2])]);
    assert(want.length >= 4, `spm_train logged ${want.length} E-steps`);
    const options = { ...defaultTrainerOptions(), model_type: "unigram", vocab_size: 2000 };
    const selector = new SentenceSelector(trainerConfig(options));
    for (const l of lines) selector.add(l, new TextEncoder().encode(l).length);
    const got: [number, number][] = [];
    await trainSentencePiece(selector, options, (stage, _done, _total, detail) => {
      const m = stage === "unigram EM" ? /^(\d+) pieces .*obj ([-\d.]+)$/.exec(detail ?? "") : null;
      if (m) got.push([Number(m[1]), Number(m[2])]);
    });
    assertEquals(got.map((g) => g[0]), want.map((w) => w[0]), "pieces after each E-step");
    got.forEach(([, obj], i) => {
      const spm = want[i][1]; // printed with 6 significant digits
      assert(Math.abs(obj - spm) <= 1e-5 * Math.abs(spm) + 1e-4, `E-step ${i + 1}: obj ${obj} vs spm_train ${spm}`);
    });
  },
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});
