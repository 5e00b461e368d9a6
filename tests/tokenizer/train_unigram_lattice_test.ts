/**
 * The UNIGRAM trainer's lattice pieces (src/tokenizer/train/unigram_lattice.ts, unigram_trainer.ts): the interpolated
 * logSumExp() against its definition logSumExpRef() (SentencePiece's float LogSumExp), bit for bit; a compacted
 * lattice against one built afresh from the surviving pieces; and training with workers against training in one
 * thread for several --num_threads (the float sums per spm_train thread must not depend on who computes them).
 */
import { assert, assertEquals } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { defaultTrainerOptions, trainerConfig } from "../../src/tokenizer/train/mod.ts";
import { prepareCorpus } from "../../src/tokenizer/train/corpus.ts";
import { charsmapFor, trainingNormalizer } from "../../src/tokenizer/train/trainer.ts";
import { pieceValidator } from "../../src/tokenizer/train/piece_validator.ts";
import {
  LatticeShard,
  logSumExp,
  logSumExpRef,
  PieceTrie,
  type ShardUnits,
} from "../../src/tokenizer/train/unigram_lattice.ts";
import { flattenUnits } from "../../src/tokenizer/train/unigram_seeds.ts";
import { trainUnigram } from "../../src/tokenizer/train/unigram_trainer.ts";
import { chineseCorpus } from "./_train_corpus.ts";

const f32 = Math.fround;

Deno.test("logSumExp() equals logSumExpRef() bit for bit", () => {
  const r = mulberry32(50);
  const pairs: [number, number][] = [
    [0, 0],
    [-0, 0],
    [-1, -1],
    [-1, f32(-51)],
    [-1, f32(-50.999)],
    [f32(-1e-7), f32(-2e-7)],
    [f32(-3.5), f32(-3.5 - 1e-6)],
    [f32(-1e4), f32(-1e4 - 49.99)],
    [f32(-20), f32(-20.00001)],
  ];
  for (let k = 0; k < 300_000; k++) {
    const x = f32(-r() * Math.pow(10, r() * 5));
    const d = r() < 0.5 ? r() * 55 : r() * r() * 0.01;
    pairs.push([x, f32(x - d)]);
  }
  // every float d in a dense stretch of the interpolation table (vmax = 0: the result is g(d) itself, rounded)
  for (let d = f32(-2); d < -1.99; d = f32(d + 1e-7)) pairs.push([0, d]);
  let n = 0;
  for (const [x, y] of pairs) {
    for (const [a, b] of [[x, y], [y, x]]) {
      const got = logSumExp(a, b), want = logSumExpRef(a, b);
      if (!Object.is(got, want)) assertEquals(got, want, `logSumExp(${a}, ${b})`);
      n++;
    }
  }
  if (n < 600_000) throw new Error("too few cases");
});

/** Units of awkward lengths over a small alphabet, and pieces = some of their substrings plus every character. */
function smallCase(seed: number): { units: ShardUnits; pieceText: Int32Array; pieceOff: Int32Array } {
  const r = mulberry32(seed);
  const alphabet = [0x61, 0x62, 0x63, 0x4e2d, 0x6587, 0x20000];
  const texts: string[] = [];
  for (let u = 0; u < 300; u++) {
    let s = "";
    const n = 1 + Math.floor(r() * r() * 40);
    for (let i = 0; i < n; i++) s += String.fromCodePoint(alphabet[Math.floor(r() * alphabet.length)]);
    texts.push(s);
  }
  const pieces = new Set(alphabet.map((c) => String.fromCodePoint(c)));
  for (const t of texts) {
    const cps = [...t];
    const a = Math.floor(r() * cps.length), b = Math.min(cps.length, a + 1 + Math.floor(r() * 5));
    pieces.add(cps.slice(a, b).join(""));
  }
  const flat = flattenUnits(texts);
  const pf = flattenUnits([...pieces]);
  return {
    units: {
      text: flat.text,
      unitOff: flat.unitOff,
      freqs: Float64Array.from(texts, () => 1 + Math.floor(r() * 3)),
      unitIds: Int32Array.from(texts, (_, i) => i),
    },
    pieceText: pf.text,
    pieceOff: pf.unitOff,
  };
}

Deno.test("LatticeShard.compact() gives the lattice built from the surviving pieces (unknown nodes last)", () => {
  for (let seed = 1; seed <= 5; seed++) {
    const { units, pieceText, pieceOff } = smallCase(seed);
    const nPieces = pieceOff.length - 1;
    const shard = new LatticeShard(units, new PieceTrie(pieceText, pieceOff));
    const r = mulberry32(seed * 7);
    // two rounds of dropping pieces (characters included, so that unknown nodes appear) and renumbering
    let alive = Array.from({ length: nPieces }, (_, i) => i); // current index → original piece
    for (let round = 0; round < 2; round++) {
      const keep = alive.filter(() => r() < 0.7);
      const remap = Int32Array.from(alive, (p) => keep.indexOf(p));
      shard.compact(remap);
      alive = keep;
      // the same pieces, in their new order, built afresh
      const text: number[] = [], off = [0];
      for (const p of alive) {
        for (let k = pieceOff[p]; k < pieceOff[p + 1]; k++) text.push(pieceText[k]);
        off.push(text.length);
      }
      const fresh = new LatticeShard(units, new PieceTrie(Int32Array.from(text), Int32Array.from(off)));
      assertEquals([...shard.nodeOff], [...fresh.nodeOff], `seed ${seed} round ${round}: offsets`);
      assertEquals([...shard.nodeLen.subarray(0, shard.nNodes)], [...fresh.nodeLen], `seed ${seed}: lengths`);
      assertEquals([...shard.nodeId.subarray(0, shard.nNodes)], [...fresh.nodeId], `seed ${seed}: ids`);
    }
  }
});

Deno.test("trainUnigram() gives the same pieces in one thread and with workers, for any --num_threads", async () => {
  const lines = chineseCorpus(3, 1200);
  for (const numThreads of [1, 2, 3, 16]) {
    const options = { ...defaultTrainerOptions(), model_prefix: "m", vocab_size: 2000, num_threads: numThreads };
    const cfg = trainerConfig(options);
    const corpus = prepareCorpus(lines, lines.map(() => 1), cfg, {
      normalizer: trainingNormalizer(cfg, charsmapFor("nmt_nfkc")),
      metaPieces: ["<unk>", "<s>", "</s>"],
      splitWords: true,
    });
    // the EM objective each E-step reports (its sum of the executors' log-likelihoods) too
    const objectives: number[][] = [];
    const train = (workers: number) => {
      const obj: number[] = [];
      objectives.push(obj);
      return trainUnigram({
        texts: corpus.texts,
        freqs: corpus.freqs,
        followers: corpus.followers,
        requiredChars: corpus.requiredChars,
        vocabSize: 1997,
        cfg,
        isValid: pieceValidator(cfg),
        workers,
        onProgress: (stage, _d, _t, detail) => {
          if (stage === "unigram EM") obj.push(Number(/obj ([-\d.]+)/.exec(detail ?? "")?.[1]));
        },
      });
    };
    const want = await train(0);
    assertEquals(want.length, 1997);
    assert(objectives[0].length >= 4 && objectives[0].every((x) => x > 0), `objectives ${objectives[0]}`);
    for (const workers of numThreads === 1 ? [1] : [1, 2]) {
      assertEquals(await train(workers), want, `--num_threads=${numThreads}, ${workers} worker(s)`);
      const got = objectives.at(-1)!;
      assertEquals(got.length, objectives[0].length);
      got.forEach((x, i) =>
        assert(Math.abs(x - objectives[0][i]) <= 1e-4, `${workers} worker(s) E-step ${i}: obj ${x}`)
      );
    }
  }
});
