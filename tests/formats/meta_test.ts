/**
 * Meta layout tests. Oracles: the seed's params_7B.json and merge_vectors.json part (c) (pth shard split sizes
 * for 13B/33B with 49,953/49,954 vocabularies), the published LLaMA FFN widths (Hugging Face `intermediate_size`
 * 11008 / 13824 / 17920 / 22016, Llama-2-70B 28672), and real PyTorch: torch.split()-made shards whose
 * torch.cat()-merged tensors we must reproduce byte for byte.
 */
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import type { DType } from "../../src/core/dtypes.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import {
  mergeMetaShards,
  type MetaShard,
  metaShardAxis,
  metaShardPart,
  metaShardSizes,
  parseMetaParams,
  type ShardTensorInfo,
  sliceMetaShard,
} from "../../src/formats/meta.ts";
import { readPytorchCheckpoint, readPytorchTensor } from "../../src/formats/pytorch.ts";
import { writePytorchCheckpoint } from "../../src/formats/pytorch_writer.ts";
import { assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataPath } from "../_fixtures.ts";
import { mulberry32 } from "../_rand.ts";
import { needsTorch, runPython, tempDir } from "./_torch_oracle.ts";

/** Tests without an external oracle run with no permissions: the readers are pure. */
const none = { permissions: "none" } as const;

Deno.test(
  "parseMetaParams() reads the seed's 7B params.json (hiddenDim 11008)",
  needsTestData("seed/params_7B.json"),
  () => {
    const p = parseMetaParams(Deno.readFileSync(testDataPath("seed/params_7B.json")!));
    assertEquals(p, {
      dim: 4096,
      nLayers: 32,
      nHeads: 32,
      nKvHeads: 32,
      multipleOf: 256,
      ffnDimMultiplier: undefined,
      normEps: 1e-6,
      vocabSize: -1,
      ropeTheta: 10000,
      maxSeqLen: undefined,
      hiddenDim: 11008,
    });
  },
);

Deno.test("parseMetaParams() computes Meta's FFN width for 13B, 33B, 65B and Llama-2-70B", none, () => {
  const hidden = (o: Record<string, unknown>) => parseMetaParams({ n_layers: 1, norm_eps: 1e-6, ...o }).hiddenDim;
  assertEquals(hidden({ dim: 5120, n_heads: 40, multiple_of: 256 }), 13824);
  assertEquals(hidden({ dim: 6656, n_heads: 52, multiple_of: 256 }), 17920);
  assertEquals(hidden({ dim: 8192, n_heads: 64, multiple_of: 256 }), 22016);
  assertEquals(
    hidden({ dim: 8192, n_heads: 64, n_kv_heads: 8, multiple_of: 4096, ffn_dim_multiplier: 1.3 }),
    28672,
  );
});

Deno.test("parseMetaParams() rejects invalid JSON, missing and non-numeric fields, inconsistent heads", none, () => {
  assertThrows(() => parseMetaParams("{dim: 1"), FormatError, "Cannot parse params.json");
  assertThrows(() => parseMetaParams("[]"), FormatError, "not a JSON object");
  assertThrows(() => parseMetaParams({ n_heads: 2, n_layers: 1 }), FormatError, '"dim" is missing');
  assertThrows(() => parseMetaParams({ dim: "4096", n_heads: 2, n_layers: 1 }), FormatError, '"dim" is not a number');
  assertThrows(() => parseMetaParams({ dim: 10, n_heads: 3, n_layers: 1 }), FormatError, "not divisible");
  assertThrows(() => parseMetaParams({ dim: 8, n_heads: 4, n_kv_heads: 3, n_layers: 1 }), FormatError, "n_kv_heads");
  assertThrows(() => parseMetaParams({ dim: 1e12, n_heads: 1, n_layers: 1 }), FormatError, "2^24");
  assertThrows(() => parseMetaParams({ dim: 8, n_heads: 1, n_layers: 1, vocab_size: 0 }), FormatError, "vocab_size");
});

Deno.test("metaShardAxis() follows Meta's model-parallel split axes", none, () => {
  for (
    const n of [
      "layers.3.attention.wq.weight",
      "layers.0.attention.wk.weight",
      "layers.1.feed_forward.w3.weight",
      "output.weight",
    ]
  ) {
    assertEquals(metaShardAxis(n, 2), 0, n);
  }
  for (const n of ["layers.3.attention.wo.weight", "layers.0.feed_forward.w2.weight", "tok_embeddings.weight"]) {
    assertEquals(metaShardAxis(n, 2), 1, n);
  }
  for (const n of ["norm.weight", "layers.0.ffn_norm.weight", "layers.0.attention_norm.weight", "rope.freqs"]) {
    assertEquals(metaShardAxis(n, 1), "replicated", n);
  }
  assertThrows(() => metaShardAxis("layers.0.attention.wz.weight", 2), UnsupportedError, "wz");
});

Deno.test(
  "metaShardSizes() matches the seed's pth shard split sizes (merge_vectors part c)",
  needsTestData("seed/tests/merge_vectors.json"),
  () => {
    const mv = JSON.parse(Deno.readTextFileSync(testDataPath("seed/tests/merge_vectors.json")!)).pth_sharding;
    const dims: Record<string, number> = { "7B": 4096, "13B": 5120, "33B": 6656 };
    for (const size of ["7B", "13B", "33B"]) {
      const c = mv[size];
      const n = c.num_shards;
      const cases: [number, Record<string, number[]>][] = [[49953, c], [49954, c.alpaca_49954 ?? c]];
      for (const [vocab, want] of cases) {
        if (n === 1) {
          assertEquals(metaShardSizes("output.weight", [vocab, dims[size]], 1).axis, "replicated");
          continue;
        }
        const out = metaShardSizes("output.weight", [vocab, dims[size]], n);
        assertEquals([out.axis, out.sizes], [0, want["output.weight_rows_per_shard"]], `${size} ${vocab} output`);
        const emb = metaShardSizes("tok_embeddings.weight", [vocab, dims[size]], n);
        assertEquals([emb.axis, emb.sizes], [1, want["tok_embeddings.weight_cols_per_shard"]], `${size} ${vocab} emb`);
      }
    }
    assertThrows(() => metaShardSizes("layers.0.attention.wq.weight", [10, 4], 4), RangeError, "evenly");
  },
);

// ---- merging ----

interface Full {
  name: string;
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

function tinyModel(seed: number): Full[] {
  const rnd = mulberry32(seed);
  const dim = 8, hidden = 12, vocab = 11;
  const defs: [string, number[]][] = [["tok_embeddings.weight", [vocab, dim]], ["norm.weight", [dim]], [
    "output.weight",
    [vocab, dim],
  ], ["rope.freqs", [2]]];
  for (let l = 0; l < 2; l++) {
    for (const w of ["wq", "wk", "wv", "wo"]) defs.push([`layers.${l}.attention.${w}.weight`, [dim, dim]]);
    defs.push([`layers.${l}.feed_forward.w1.weight`, [hidden, dim]]);
    defs.push([`layers.${l}.feed_forward.w2.weight`, [dim, hidden]]);
    defs.push([`layers.${l}.feed_forward.w3.weight`, [hidden, dim]]);
    defs.push([`layers.${l}.attention_norm.weight`, [dim]], [`layers.${l}.ffn_norm.weight`, [dim]]);
  }
  return defs.map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1) * 2;
    const bytes = new Uint8Array(n).map(() => Math.floor(rnd() * 256));
    for (let i = 1; i < n; i += 2) bytes[i] &= 0x3b; // finite f16
    return { name, dtype: "F16" as DType, shape, bytes };
  });
}

/** Splits with sliceMetaShard, writes each shard with our writer, reads them back as MetaShards. */
function shardsOf(model: Full[], nShards: number): MetaShard[] {
  const out: MetaShard[] = [];
  for (let s = 0; s < nShards; s++) {
    const sink = new BytesSink();
    writePytorchCheckpoint(
      sink,
      model.map((t) => {
        const part = metaShardPart(t.name, t.shape, t.dtype, nShards, s);
        return { name: t.name, dtype: t.dtype, shape: part.shape, write: (w) => w(part.slice(t.bytes)) };
      }),
      { archiveName: `consolidated.0${s}` },
    );
    const src = new BytesSource(sink.bytes());
    const ck = readPytorchCheckpoint(src);
    out.push({ tensors: ck.tensors, read: (t) => readPytorchTensor(src, t as never) });
  }
  return out;
}

Deno.test("mergeMetaShards() reassembles split shards exactly (1, 2 and 4 shards)", none, () => {
  const model = tinyModel(11);
  for (const n of [1, 2, 4]) {
    const merged = mergeMetaShards(shardsOf(model, n));
    assertEquals(merged.map((m) => m.name), model.map((t) => t.name));
    for (const t of model) {
      const m = merged.find((x) => x.name === t.name)!;
      assertEquals([m.dtype, m.shape, m.nBytes], [t.dtype, t.shape, t.bytes.length], `${n} shards ${t.name}`);
      assertEquals(m.read(), t.bytes, `${n} shards ${t.name}`);
    }
  }
});

const TORCH_SHARDS = `
import torch, json, sys
d = sys.argv[1]
torch.manual_seed(1)
dim, hidden, vocab = 8, 12, 10
full = {"tok_embeddings.weight": torch.randn(vocab, dim), "norm.weight": torch.randn(dim),
        "output.weight": torch.randn(vocab, dim), "rope.freqs": torch.randn(4)}
for w in ("wq", "wk", "wv", "wo"): full["layers.0.attention.%s.weight" % w] = torch.randn(dim, dim)
full["layers.0.feed_forward.w1.weight"] = torch.randn(hidden, dim)
full["layers.0.feed_forward.w2.weight"] = torch.randn(dim, hidden)
full["layers.0.feed_forward.w3.weight"] = torch.randn(hidden, dim)
full["layers.0.attention_norm.weight"] = torch.randn(dim)
full["layers.0.ffn_norm.weight"] = torch.randn(dim)
n = 2
shards = [dict() for _ in range(n)]
for k, v in full.items():
    if v.dim() == 1: parts = [v] * n
    elif k.startswith("tok_embeddings") or k.endswith("wo.weight") or k.endswith("w2.weight"): parts = torch.chunk(v, n, dim=1)
    else: parts = torch.chunk(v, n, dim=0)
    for sd, p in zip(shards, parts): sd[k] = p.clone().half()
for i, sd in enumerate(shards): torch.save(sd, "%s/consolidated.%02d.pth" % (d, i))
print(json.dumps({k: [list(v.shape), v.half().numpy().tobytes().hex()] for k, v in full.items()}))
`;

Deno.test("mergeMetaShards() of torch-made shards equals the tensors torch split", needsTorch(), () => {
  const dir = tempDir();
  const want = JSON.parse(runPython(TORCH_SHARDS, dir)) as Record<string, [number[], string]>;
  const shards: MetaShard[] = [0, 1].map((i) => {
    const src = new BytesSource(Deno.readFileSync(`${dir}/consolidated.0${i}.pth`));
    const ck = readPytorchCheckpoint(src);
    return { tensors: ck.tensors, read: (t: ShardTensorInfo) => readPytorchTensor(src, t as never) };
  });
  const merged = mergeMetaShards(shards);
  assertEquals(merged.map((m) => m.name).sort(), Object.keys(want).sort());
  for (const m of merged) {
    const [shape, hex] = want[m.name];
    assertEquals(m.shape, shape, m.name);
    assertEquals(Array.from(m.read(), (b) => b.toString(16).padStart(2, "0")).join(""), hex, m.name);
  }
  Deno.removeSync(dir, { recursive: true });
});

// ---- hostile shards ----

function memShard(tensors: Full[]): MetaShard {
  const by = new Map(tensors.map((t) => [t.name, t]));
  return {
    tensors: tensors.map(({ name, dtype, shape, bytes }) => ({ name, dtype, shape, nBytes: bytes.length })),
    read: (t) => by.get(t.name)!.bytes,
  };
}

const t = (name: string, shape: number[], fill = 0, dtype: DType = "F16"): Full => ({
  name,
  dtype,
  shape,
  bytes: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2).fill(fill),
});

Deno.test("mergeMetaShards() rejects a tensor missing from one shard", none, () => {
  const a = memShard([t("norm.weight", [4]), t("output.weight", [2, 4])]);
  const b = memShard([t("norm.weight", [4]), t("tok_embeddings.weight", [2, 4])]);
  assertThrows(() => mergeMetaShards([a, b]), FormatError, '"output.weight" is missing from shard 1');
});

Deno.test("mergeMetaShards() rejects shapes that disagree off the split axis", none, () => {
  const a = memShard([t("output.weight", [2, 4])]);
  const b = memShard([t("output.weight", [2, 5])]);
  assertThrows(() => mergeMetaShards([a, b]), FormatError, "has shape [2,5] in shard 1");
});

Deno.test("mergeMetaShards() rejects dtypes that disagree", none, () => {
  const a = memShard([t("output.weight", [2, 4])]);
  const b = memShard([{ ...t("output.weight", [1, 4]), dtype: "BF16" }]);
  assertThrows(() => mergeMetaShards([a, b]), FormatError, "BF16 in shard 1");
});

Deno.test("mergeMetaShards() rejects replicated tensors that differ between shards", none, () => {
  const merged = mergeMetaShards([memShard([t("norm.weight", [4], 1)]), memShard([t("norm.weight", [4], 2)])]);
  assertThrows(() => merged[0].read(), FormatError, 'replicated "norm.weight" differs in shard 1');
});

Deno.test("mergeMetaShards() rejects duplicate names and unknown 2-D tensors", none, () => {
  assertThrows(() => mergeMetaShards([memShard([t("norm.weight", [4]), t("norm.weight", [4])])]), FormatError, "twice");
  const x = memShard([t("lora_A.weight", [2, 2])]);
  assertThrows(() => mergeMetaShards([x, x]), UnsupportedError, "lora_A.weight");
});

Deno.test("metaShardPart() gives the seed's uneven output.weight split and rejects bad shard indices", none, () => {
  assertEquals(metaShardPart("output.weight", [49953, 5120], "F16", 2, 0).shape, [24976, 5120]);
  const last = metaShardPart("output.weight", [49953, 5120], "F16", 2, 1);
  assertEquals([last.axis, last.start, last.shape], [0, 24976, [24977, 5120]]);
  const emb = metaShardPart("tok_embeddings.weight", [49954, 6656], "F16", 4, 3);
  assertEquals([emb.axis, emb.start, emb.shape], [1, 4992, [49954, 1664]]);
  assertThrows(() => metaShardPart("norm.weight", [8], "F16", 2, 2), RangeError, "outside");
});

Deno.test("sliceMetaShard() rejects ranges outside the tensor", none, () => {
  const b = new Uint8Array(2 * 3 * 4);
  assertThrows(() => sliceMetaShard(b, [3, 4], "F16", 1, 3, 2), RangeError, "Cannot slice");
  assertEquals(sliceMetaShard(b, [3, 4], "F16", 0, 1, 2).length, 16);
});
