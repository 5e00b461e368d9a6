/**
 * PyTorch checkpoint reader/writer tests. Oracle: real PyTorch (/usr/bin/python3, torch 1.13) — files written by
 * torch.save are read bit-identically (values printed by torch as hex), and files we write are loaded by
 * torch.load with identical values; plus round trips without torch and hand-built hostile checkpoints.
 */
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import type { DType } from "../../src/core/dtypes.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { PickleWriter } from "../../src/formats/pickle.ts";
import { isContiguous, readPytorchCheckpoint, readPytorchTensor } from "../../src/formats/pytorch.ts";
import { pthArchiveName, type PthTensorSource, writePytorchCheckpoint } from "../../src/formats/pytorch_writer.ts";
import { ZipWriter } from "../../src/formats/zip.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { needsTorch, runPython, tempDir } from "./_torch_oracle.ts";
import { AtomicFileSink, openFileSource } from "../../src/io/mod.ts";

/** Tests without an external oracle run with no permissions: the readers are pure. */
const none = { permissions: "none" } as const;

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// One torch run writes every fixture and prints each tensor's dtype, shape and contiguous bytes as hex.
const TORCH_FIXTURES = `
import torch, json, sys, collections
d = sys.argv[1]
torch.manual_seed(0)
def hexof(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16: t = t.view(torch.int16)
    return t.numpy().tobytes().hex()
base = torch.randn(6, 5)
mixed = {
  "f32": base, "f16": base.half(), "bf16": base.bfloat16(), "f64": base.double(),
  "i64": torch.arange(-5, 5), "i32": torch.arange(7, dtype=torch.int32), "i16": torch.arange(3, dtype=torch.int16),
  "i8": torch.tensor([-128, 0, 127], dtype=torch.int8), "u8": torch.tensor([0, 255], dtype=torch.uint8),
  "bool": torch.tensor([True, False, True]), "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 4),
  "transposed": base.t(), "rows": base[2:5], "cols": base[:, 1:3], "every_other": base[::2],
  "param": torch.nn.Parameter(torch.randn(3, 2)),
}
torch.save(mixed, d + "/mixed.bin")
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.lin = torch.nn.Linear(4, 3, bias=False)
m = M().half()
torch.save(m.state_dict(), d + "/consolidated.00.pth")
torch.save({"epoch": 3, "state_dict": {"w": base}}, d + "/nested.bin")
torch.save({"w": base}, d + "/legacy.bin", _use_new_zipfile_serialization=False)
out = {}
for name, sd in (("mixed.bin", mixed), ("consolidated.00.pth", m.state_dict()), ("nested.bin", {"w": base})):
    out[name] = {k: [str(v.dtype), list(v.shape), hexof(v)] for k, v in sd.items()}
ours = torch.load(d + "/ours/consolidated.00.pth")
loaded = {k: [str(v.dtype), list(v.shape), v.is_contiguous(), hexof(v)] for k, v in ours.items()}
print(json.dumps({"fixtures": out, "ours": loaded}))
`;

interface TorchOracle {
  /** torch's view of each fixture file: name → [dtype, shape, contiguous bytes as hex]. */
  fixtures: Record<string, Record<string, [string, number[], string]>>;
  /** The fixture files' bytes. */
  files: Map<string, Uint8Array>;
  /** torch.load of our writeSample() file: name → [dtype, shape, is_contiguous, hex]. */
  ours: Record<string, [string, number[], boolean, string]>;
}

let oracle: TorchOracle | undefined;

/** One torch run (importing torch costs ~2 s): writes the fixtures and loads the file we wrote. */
function torchOracle(): TorchOracle {
  if (oracle) return oracle;
  const dir = tempDir();
  Deno.mkdirSync(`${dir}/ours`);
  Deno.writeFileSync(`${dir}/ours/consolidated.00.pth`, writeSample().file);
  const out = JSON.parse(runPython(TORCH_FIXTURES, dir));
  const files = new Map<string, Uint8Array>();
  for (const f of ["mixed.bin", "consolidated.00.pth", "nested.bin", "legacy.bin"]) {
    files.set(f, Deno.readFileSync(`${dir}/${f}`));
  }
  Deno.removeSync(dir, { recursive: true });
  return oracle = { fixtures: out.fixtures, files, ours: out.ours };
}

const TORCH_DTYPE: Record<string, DType> = {
  "torch.float32": "F32",
  "torch.float16": "F16",
  "torch.bfloat16": "BF16",
  "torch.float64": "F64",
  "torch.int64": "I64",
  "torch.int32": "I32",
  "torch.int16": "I16",
  "torch.int8": "I8",
  "torch.uint8": "U8",
  "torch.bool": "BOOL",
};

Deno.test(
  "readPytorchCheckpoint() reads torch.save files bit-identically (all dtypes, views, parameters, nesting)",
  needsTorch(),
  () => {
    const { fixtures, files } = torchOracle();
    for (const [file, tensors] of Object.entries(fixtures)) {
      const src = new BytesSource(files.get(file)!, file);
      const ckpt = readPytorchCheckpoint(src);
      assertEquals(ckpt.tensors.map((t) => t.name), Object.keys(tensors), file);
      for (const [name, [dtype, shape, hex]] of Object.entries(tensors)) {
        const t = ckpt.byName.get(name)!;
        assertEquals([t.dtype, t.shape], [TORCH_DTYPE[dtype], shape], `${file}:${name}`);
        assertEquals(toHex(readPytorchTensor(src, t)), hex, `${file}:${name} bytes`);
        if (t.contiguous) assertEquals(toHex(src.read(t.byteOffset, t.nBytes)), hex, `${file}:${name} raw range`);
      }
    }
    const mixed = readPytorchCheckpoint(new BytesSource(files.get("mixed.bin")!));
    assertEquals(mixed.archiveName, "mixed");
    const tr = mixed.byName.get("transposed")!;
    assertEquals([tr.contiguous, tr.byteOffset, tr.stride], [false, -1, [1, 5]]);
    const rows = mixed.byName.get("rows")!;
    assertEquals([rows.contiguous, rows.storageKey, rows.storageOffset], [
      true,
      mixed.byName.get("f32")!.storageKey,
      10,
    ]);
    assertEquals(mixed.byName.get("cols")!.contiguous, false);
    assertEquals(
      readPytorchCheckpoint(new BytesSource(files.get("nested.bin")!)).nestedUnder,
      "state_dict",
    );
    assertEquals(
      readPytorchCheckpoint(new BytesSource(files.get("nested.bin")!)).extras.get("epoch"),
      3,
    );
    assertThrows(
      () => readPytorchCheckpoint(new BytesSource(files.get("legacy.bin")!)),
      UnsupportedError,
      "legacy",
    );
  },
);

function sampleTensors(seed = 3): { specs: PthTensorSource[]; bytes: Map<string, Uint8Array> } {
  const rnd = mulberry32(seed);
  const defs: [string, DType, number[]][] = [
    ["tok_embeddings.weight", "F16", [7, 4]],
    ["layers.0.attention.wq.weight", "F32", [4, 4]],
    ["layers.0.attention_norm.weight", "BF16", [4]],
    ["rope.freqs", "F32", [2]],
    ["scalar", "F64", []],
    ["empty", "F16", [0, 3]],
    ["ids", "I64", [2, 1, 3]],
    ["big_rank", "U8", [1, 2, 1, 2, 1]],
  ];
  const bytes = new Map<string, Uint8Array>();
  const specs = defs.map(([name, dtype, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1) *
      ({ F16: 2, BF16: 2, F32: 4, F64: 8, I64: 8, U8: 1 } as Record<string, number>)[dtype];
    const b = new Uint8Array(n).map(() => Math.floor(rnd() * 256));
    if (dtype === "F16" || dtype === "BF16") { for (let i = 1; i < n; i += 2) b[i] &= 0x3f; // finite values
     }
    if (dtype === "F32") { for (let i = 3; i < n; i += 4) b[i] &= 0x3f; }
    if (dtype === "F64") { for (let i = 7; i < n; i += 8) b[i] &= 0x3f; }
    bytes.set(name, b);
    // Written in two chunks, as a streaming producer would.
    return {
      name,
      dtype,
      shape,
      write: (w: (c: Uint8Array) => void) => (w(b.subarray(0, n >> 1)), w(b.subarray(n >> 1))),
    };
  });
  return { specs, bytes };
}

function writeSample(seed = 3, archiveName = "consolidated.00"): { file: Uint8Array; bytes: Map<string, Uint8Array> } {
  const { specs, bytes } = sampleTensors(seed);
  const sink = new BytesSink();
  writePytorchCheckpoint(sink, specs, { archiveName });
  return { file: sink.bytes(), bytes };
}

Deno.test("writePytorchCheckpoint() output round-trips through readPytorchCheckpoint()", none, () => {
  const { file, bytes } = writeSample();
  const src = new BytesSource(file);
  const ckpt = readPytorchCheckpoint(src);
  assertEquals(ckpt.archiveName, "consolidated.00");
  assertEquals(ckpt.tensors.map((t) => t.name), [...bytes.keys()]);
  for (const t of ckpt.tensors) {
    assert(t.contiguous);
    assertEquals(readPytorchTensor(src, t), bytes.get(t.name)!, t.name);
    if (t.nBytes > 0) assertEquals(t.byteOffset % 64, 0);
  }
});

Deno.test("writePytorchCheckpoint() output loads in torch.load with identical values", needsTorch(), () => {
  const { bytes } = writeSample();
  const out = torchOracle().ours;
  const { specs } = sampleTensors();
  assertEquals(Object.keys(out), specs.map((s) => s.name));
  for (const s of specs) {
    const [dtype, shape, contiguous, hex] = out[s.name];
    assertEquals([TORCH_DTYPE[dtype], shape, contiguous], [s.dtype, s.shape, true], s.name);
    assertEquals(hex, toHex(bytes.get(s.name)!), s.name);
  }
});

Deno.test("pthArchiveName() strips the folder and extension as torch.save does", none, () => {
  assertEquals(pthArchiveName("out/consolidated.01.pth"), "consolidated.01");
  assertEquals(pthArchiveName("pytorch_model.bin"), "pytorch_model");
  assertEquals(pthArchiveName("noext"), "noext");
});

Deno.test("isContiguous() accepts size-1 dims with any stride and rejects transposes", none, () => {
  assert(isContiguous([3, 4], [4, 1]));
  assert(isContiguous([1, 4], [99, 1]));
  assert(isContiguous([0, 4], [1, 1]));
  assert(!isContiguous([4, 3], [1, 4]));
});

Deno.test("writePytorchCheckpoint() rejects duplicate names and dtypes PyTorch cannot hold", none, () => {
  const w = (_: (c: Uint8Array) => void) => {};
  assertThrows(
    () =>
      writePytorchCheckpoint(new BytesSink(), [
        { name: "a", dtype: "F32", shape: [0], write: w },
        { name: "a", dtype: "F32", shape: [0], write: w },
      ]),
    RangeError,
    "duplicate",
  );
  assertThrows(
    () => writePytorchCheckpoint(new BytesSink(), [{ name: "q", dtype: "Q4_0", shape: [32], write: w }]),
    RangeError,
    "Q4_0",
  );
});

// ---- hostile input ----

/** A torch-like archive with the given data.pkl and storages. */
function archive(
  pkl: Uint8Array,
  storages: [string, Uint8Array][] = [],
  extra: [string, Uint8Array][] = [],
): BytesSource {
  const sink = new BytesSink();
  const z = new ZipWriter(sink);
  z.add("archive/data.pkl", pkl);
  for (const [k, b] of storages) z.add(`archive/data/${k}`, b);
  for (const [n, b] of extra) z.add(n, b);
  z.add("archive/version", new TextEncoder().encode("3\n"));
  z.finish();
  return new BytesSource(sink.bytes());
}

interface TensorPickle {
  name: string;
  storage?: string;
  key?: string;
  numel: number;
  offset?: number;
  shape: number[];
  stride: number[];
}

function statePickle(tensors: TensorPickle[]): Uint8Array {
  const p = new PickleWriter().emptyDict().mark();
  for (const t of tensors) {
    p.str(t.name).global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", t.storage ?? "FloatStorage").str(t.key ?? "0").str("cpu").int(t.numel)
      .tuple().binPersId();
    p.int(t.offset ?? 0).intTuple(t.shape).intTuple(t.stride).bool(false);
    p.global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce();
  }
  return p.setItems().finish();
}

const f32x = (n: number) => new Uint8Array(4 * n);
/** Bytes of a string written with \xNN escapes (one byte per char, not UTF-8). */
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

Deno.test("readPytorchCheckpoint() accepts a hand-built valid archive (baseline for the hostile cases)", none, () => {
  const src = archive(statePickle([{ name: "w", numel: 6, shape: [2, 3], stride: [3, 1] }]), [["0", f32x(6)]]);
  assertEquals(readPytorchCheckpoint(src).byName.get("w")!.shape, [2, 3]);
});

Deno.test("readPytorchCheckpoint() rejects a pickle that calls os.system, naming it", none, () => {
  const evil = latin1("\x80\x02cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R.");
  assertThrows(() => readPytorchCheckpoint(archive(evil)), FormatError, 'global "os.system" is not allowed');
  const evalP = latin1("\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.");
  assertThrows(() => readPytorchCheckpoint(archive(evalP)), FormatError, 'global "builtins.eval"');
  const popen = latin1("\x80\x02csubprocess\nPopen\n)R.");
  assertThrows(() => readPytorchCheckpoint(archive(popen)), FormatError, 'global "subprocess.Popen"');
});

Deno.test("readPytorchCheckpoint() rejects calling a whitelisted non-function (a storage class)", none, () => {
  const p = latin1("\x80\x02ctorch\nFloatStorage\n)R.");
  assertThrows(() => readPytorchCheckpoint(archive(p)), FormatError, '"torch.FloatStorage" cannot be called');
});

Deno.test("readPytorchCheckpoint() rejects the legacy non-zip format with UnsupportedError", none, () => {
  const legacy = new Uint8Array([
    0x80,
    2,
    0x8a,
    0x0a,
    0x6c,
    0xfc,
    0x9c,
    0x46,
    0xf9,
    0x20,
    0x6a,
    0xa8,
    0x50,
    0x19,
    0x2e,
  ]);
  assertThrows(() => readPytorchCheckpoint(new BytesSource(legacy)), UnsupportedError, "legacy");
});

Deno.test("readPytorchCheckpoint() rejects a file that is not a zip", none, () => {
  assertThrows(() => readPytorchCheckpoint(new BytesSource(new Uint8Array(100))), FormatError, "zip");
});

Deno.test("readPytorchCheckpoint() rejects an archive without data.pkl", none, () => {
  const sink = new BytesSink();
  const z = new ZipWriter(sink);
  z.add("archive/version", new TextEncoder().encode("3\n"));
  z.finish();
  assertThrows(() => readPytorchCheckpoint(new BytesSource(sink.bytes())), FormatError, "data.pkl");
});

Deno.test("readPytorchCheckpoint() rejects a tensor whose storage entry is missing", none, () => {
  const src = archive(statePickle([{ name: "w", numel: 6, shape: [2, 3], stride: [3, 1] }]));
  assertThrows(() => readPytorchCheckpoint(src), FormatError, 'no entry "archive/data/0"');
});

Deno.test("readPytorchCheckpoint() rejects a storage whose size does not match its element count", none, () => {
  const src = archive(statePickle([{ name: "w", numel: 6, shape: [2, 3], stride: [3, 1] }]), [["0", f32x(5)]]);
  assertThrows(() => readPytorchCheckpoint(src), FormatError, "holds 20 bytes, expected 6");
});

Deno.test("readPytorchCheckpoint() rejects a view reaching past its storage", none, () => {
  const src = archive(statePickle([{ name: "w", numel: 6, offset: 1, shape: [2, 3], stride: [3, 1] }]), [[
    "0",
    f32x(6),
  ]]);
  assertThrows(() => readPytorchCheckpoint(src), FormatError, "reaches element 6");
  const big = archive(statePickle([{ name: "w", numel: 6, shape: [2, 3], stride: [300, 1] }]), [["0", f32x(6)]]);
  assertThrows(() => readPytorchCheckpoint(big), FormatError, "reaches element");
});

Deno.test("readPytorchCheckpoint() rejects a shape whose element count overflows", none, () => {
  const s = 2 ** 30;
  const src = archive(statePickle([{ name: "w", numel: 6, shape: [s, s, s], stride: [0, 0, 0] }]), [["0", f32x(6)]]);
  assertThrows(() => readPytorchCheckpoint(src), FormatError, "overflows");
});

Deno.test("readPytorchCheckpoint() rejects self-overlapping (expanded) views with UnsupportedError", none, () => {
  const src = archive(statePickle([{ name: "w", numel: 1, shape: [1000, 1000], stride: [0, 0] }]), [["0", f32x(1)]]);
  assertThrows(() => readPytorchCheckpoint(src), UnsupportedError, "self-overlapping");
});

Deno.test("readPytorchCheckpoint() rejects duplicate tensor names", none, () => {
  const t = { name: "w", numel: 6, shape: [2, 3], stride: [3, 1] };
  const src = archive(statePickle([t, t]), [["0", f32x(6)]]);
  assertThrows(() => readPytorchCheckpoint(src), FormatError, 'duplicate dict key "w"');
});

Deno.test("readPytorchCheckpoint() rejects one storage declared with two dtypes", none, () => {
  const src = archive(
    statePickle([
      { name: "a", numel: 6, shape: [6], stride: [1] },
      { name: "b", storage: "HalfStorage", numel: 6, shape: [6], stride: [1] },
    ]),
    [["0", f32x(6)]],
  );
  assertThrows(() => readPytorchCheckpoint(src), FormatError, "declared twice");
});

Deno.test("readPytorchCheckpoint() rejects unknown storage dtypes with UnsupportedError", none, () => {
  const src = archive(statePickle([{ name: "c", storage: "ComplexFloatStorage", numel: 1, shape: [1], stride: [1] }]), [
    [
      "0",
      f32x(2),
    ],
  ]);
  assertThrows(() => readPytorchCheckpoint(src), UnsupportedError, "ComplexFloatStorage");
});

Deno.test("readPytorchCheckpoint() rejects big-endian checkpoints with UnsupportedError", none, () => {
  const src = archive(statePickle([]), [], [["archive/byteorder", new TextEncoder().encode("big")]]);
  assertThrows(() => readPytorchCheckpoint(src), UnsupportedError, "big-endian");
});

Deno.test("readPytorchCheckpoint() rejects a pickle whose root is not a dict", none, () => {
  assertThrows(() => readPytorchCheckpoint(archive(new PickleWriter().int(5).finish())), FormatError, "not a dict");
});

Deno.test("readPytorchCheckpoint() throws FormatError for every truncation of a small valid file", none, () => {
  const { file } = writeSample(5);
  const t0 = performance.now();
  for (let n = 0; n < file.length; n++) {
    assertThrows(() => readPytorchCheckpoint(new BytesSource(file.subarray(0, n))), FormatError);
  }
  assert(performance.now() - t0 < 3000, `truncation cases took ${performance.now() - t0} ms`);
});

Deno.test("writePytorchCheckpoint() streams into an AtomicFileSink and reads back through a FileSource", () => {
  const dir = tempDir();
  const path = `${dir}/consolidated.00.pth`;
  const { specs, bytes } = sampleTensors(9);
  const sink = new AtomicFileSink(path);
  writePytorchCheckpoint(sink, specs, { archiveName: pthArchiveName(path) });
  sink.commit();
  {
    using src = openFileSource(path);
    const ckpt = readPytorchCheckpoint(src);
    assertEquals(ckpt.archiveName, "consolidated.00");
    for (const t of ckpt.tensors) assertEquals(readPytorchTensor(src, t), bytes.get(t.name)!, t.name);
  }
  Deno.removeSync(dir, { recursive: true });
});

function envFlag(name: string): boolean {
  try {
    return Deno.env.get(name) === "1";
  } catch {
    return false;
  }
}

// Writes ~4.3 GB to /tmp and CRCs it (15-40 s on a shared machine): only with YANGTUO_BIG_TESTS=1.
Deno.test({
  name:
    "writePytorchCheckpoint() writes a > 4 GiB tensor (ZIP64) that CPython's zipfile and readPytorchCheckpoint read",
  ignore: !envFlag("YANGTUO_BIG_TESTS"),
}, () => {
  const dir = tempDir();
  const path = `${dir}/big.pth`;
  const n = 2 ** 30 + 16; // F32 elements: 4 GiB + 64 bytes
  const chunk = new Uint8Array(1 << 24);
  const tail = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  const sink = new AtomicFileSink(path);
  writePytorchCheckpoint(sink, [
    { name: "small", dtype: "F32", shape: [2], write: (w) => w(new Uint8Array(new Float32Array([1.5, -2]).buffer)) },
    {
      name: "big",
      dtype: "F32",
      shape: [n],
      write: (w) => {
        for (let left = 4 * (n - 16); left > 0; left -= chunk.length) {
          w(chunk.subarray(0, Math.min(left, chunk.length)));
        }
        w(new Uint8Array(tail.buffer));
      },
    },
    { name: "after", dtype: "F16", shape: [3], write: (w) => w(new Uint8Array([0, 60, 0, 64, 0, 66])) },
  ], { archiveName: "big" });
  sink.commit();
  const out = runPython(
    `import zipfile,sys
z=zipfile.ZipFile(sys.argv[1])
i=z.getinfo('big/data/1'); print(i.file_size, z.getinfo('big/data/2').header_offset > 2**32, z.read('big/data/2').hex())`,
    path,
  );
  assertEquals(out.trim(), `${4 * n} True 003c00400042`);
  {
    using src = openFileSource(path);
    const ck = readPytorchCheckpoint(src);
    const big = ck.byName.get("big")!;
    assertEquals(big.nBytes, 4 * n);
    // Random access to the last 64 bytes of the 4 GiB tensor, without reading the rest.
    assertEquals(src.read(big.byteOffset + big.nBytes - 64, 64), new Uint8Array(tail.buffer));
    assertEquals(readPytorchTensor(src, ck.byName.get("after")!), new Uint8Array([0, 60, 0, 64, 0, 66]));
  }
  Deno.removeSync(dir, { recursive: true });
});
