/**
 * Seeded mutation fuzzing of the zip reader, the restricted unpickler (through the PyTorch reader, with the
 * mutated data.pkl's CRC fixed up so mutations reach the interpreter) and the PyTorch checkpoint reader.
 * Oracle: the property that every case ends in success or a typed error (FormatError, UnsupportedError,
 * RangeError), within a time bound, never reading (allocating) more than the file size at once.
 * YANGTUO_FUZZ_CASES sets the cases per format (default 2000); YANGTUO_FUZZ_SEED the seed.
 */
import { BytesSink } from "../../src/core/byte_source.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { PickleWriter } from "../../src/formats/pickle.ts";
import { readPytorchCheckpoint, readPytorchTensor } from "../../src/formats/pytorch.ts";
import { writePytorchCheckpoint } from "../../src/formats/pytorch_writer.ts";
import { crc32, readZip, readZipEntry, ZipWriter } from "../../src/formats/zip.ts";
import { assert, assertEquals } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { CountingSource } from "./_torch_oracle.ts";
import { torchFuzzBase } from "./_torch_fixture.ts";

/** Tests without an external oracle run with no permissions: the readers are pure. */
const none = { permissions: "none" } as const;

function envInt(name: string, fallback: number): number {
  try {
    const v = Deno.env.get(name);
    return v ? Number.parseInt(v, 10) : fallback;
  } catch {
    return fallback;
  }
}

const CASES = envInt("YANGTUO_FUZZ_CASES", 2000);
const SEED = envInt("YANGTUO_FUZZ_SEED", 20260527);
// Generous: a hang or a quadratic blow-up shows as seconds; GC pauses on a loaded 2-core machine reach ~150 ms.
const CASE_MS = 1000;

/** A checkpoint with shared storage, a storage offset, a transposed view, F16 and I64 — built like torch does. */
function baseCheckpoint(): Uint8Array {
  const p = new PickleWriter().global("collections", "OrderedDict").emptyTuple().reduce().mark();
  const tensor = (
    name: string,
    storage: string,
    key: string,
    numel: number,
    off: number,
    shape: number[],
    stride: number[],
  ) => {
    p.str(name).global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", storage).str(key).str("cpu").int(numel).tuple().binPersId();
    p.int(off).intTuple(shape).intTuple(stride).bool(false);
    p.global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce();
  };
  tensor("w", "FloatStorage", "0", 12, 0, [3, 4], [4, 1]);
  tensor("t", "FloatStorage", "0", 12, 0, [4, 3], [1, 4]);
  tensor("rows", "FloatStorage", "0", 12, 4, [2, 4], [4, 1]);
  tensor("h", "HalfStorage", "1", 6, 0, [2, 3], [3, 1]);
  tensor("ids", "LongStorage", "2", 3, 0, [3], [1]);
  p.str("step").int(7);
  const pkl = p.setItems().finish();
  const sink = new BytesSink();
  const z = new ZipWriter(sink);
  z.add("archive/data.pkl", pkl);
  const rnd = mulberry32(5);
  for (const [k, n] of [["0", 48], ["1", 12], ["2", 24]] as const) {
    z.add(`archive/data/${k}`, new Uint8Array(n).map(() => Math.floor(rnd() * 256)));
  }
  z.add("archive/version", new TextEncoder().encode("3\n"));
  z.finish();
  return sink.bytes();
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

function mutate(base: Uint8Array, rnd: () => number, lo = 0, hi = base.length): Uint8Array {
  const r = (n: number) => Math.floor(rnd() * n);
  let b = base.slice();
  const ops = 1 + r(4);
  for (let k = 0; k < ops; k++) {
    const at = lo + r(hi - lo);
    switch (r(6)) {
      case 0:
        b[at] = r(256);
        break;
      case 1:
        b[at] ^= 1 << r(8);
        break;
      case 2: {
        const v = INTERESTING[r(INTERESTING.length)];
        for (let i = 0; i < 4 && at + i < hi; i++) b[at + i] = (v >>> (8 * i)) & 0xff;
        break;
      }
      case 3: {
        const v = r(2) ? b.length : r(b.length);
        for (let i = 0; i < 4 && at + i < hi; i++) b[at + i] = (v >>> (8 * i)) & 0xff;
        break;
      }
      case 4:
        if (lo === 0 && hi === base.length && r(3) === 0) b = b.slice(0, r(b.length)); // truncate
        else b[at] = 0;
        break;
      default: { // copy a few bytes from elsewhere in the region
        const from = lo + r(hi - lo), n = 1 + r(8);
        for (let i = 0; i < n && at + i < hi && from + i < hi; i++) b[at + i] = b[from + i];
      }
    }
  }
  return b;
}

function expectTyped(e: unknown, what: string): void {
  if (e instanceof FormatError || e instanceof UnsupportedError || e instanceof RangeError) return;
  throw new Error(`${what}: untyped error ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
}

function runCases(
  label: string,
  base: Uint8Array,
  make: (rnd: () => number) => Uint8Array,
  run: (src: CountingSource) => void,
) {
  const rnd = mulberry32(SEED ^ label.length * 7919);
  let ok = 0, maxMs = 0;
  for (let c = 0; c < CASES; c++) {
    const bytes = make(rnd);
    const src = new CountingSource(bytes);
    const t0 = performance.now();
    try {
      run(src);
      ok++;
    } catch (e) {
      expectTyped(e, `${label} case ${c} (seed ${SEED})`);
    }
    const ms = performance.now() - t0;
    maxMs = Math.max(maxMs, ms);
    assert(ms < CASE_MS, `${label} case ${c} (seed ${SEED}) took ${ms.toFixed(1)} ms`);
    assert(src.maxRead <= bytes.length, `${label} case ${c}: one read of ${src.maxRead} bytes > file ${bytes.length}`);
    assert(
      src.totalRead <= 64 * Math.max(bytes.length, 1024),
      `${label} case ${c}: read ${src.totalRead} bytes of a ${bytes.length}-byte file`,
    );
  }
  // Not an assertion: how many mutants still parsed, to see the fuzzer is not only hitting the first check.
  console.log(`${label}: ${CASES} cases, ${ok} parsed, slowest ${maxMs.toFixed(2)} ms (base ${base.length} bytes)`);
}

function readAll(src: CountingSource): void {
  const ck = readPytorchCheckpoint(src);
  for (const t of ck.tensors) {
    const b = readPytorchTensor(src, t);
    if (b.length !== t.nBytes) throw new Error(`tensor ${t.name}: read ${b.length} bytes, described ${t.nBytes}`);
  }
}

Deno.test("fuzz: readZip() on mutated archives ends in success or a typed error", none, () => {
  const sink = new BytesSink();
  writePytorchCheckpoint(sink, [
    { name: "a", dtype: "F32", shape: [3], write: (w) => w(new Uint8Array(12).fill(1)) },
    { name: "b", dtype: "F16", shape: [2, 2], write: (w) => w(new Uint8Array(8).fill(2)) },
  ]);
  const base = sink.bytes();
  runCases("zip", base, (rnd) => mutate(base, rnd), (src) => {
    const zip = readZip(src);
    for (const e of zip.entries) readZipEntry(src, e);
  });
});

/** Mutates only data.pkl, then rewrites its CRC in the central directory so the mutant reaches the unpickler. */
function pickleCases(label: string, base: Uint8Array, pklName: string): void {
  const zip = readZip(new CountingSource(base));
  const pkl = zip.byName.get(pklName)!;
  const cdRecord = findCentralRecord(base, pklName);
  runCases(label, base, (rnd) => {
    const b = mutate(base, rnd, pkl.dataOffset, pkl.dataOffset + pkl.nBytes);
    const c = crc32(b.subarray(pkl.dataOffset, pkl.dataOffset + pkl.nBytes));
    new DataView(b.buffer).setUint32(cdRecord + 16, c, true);
    return b;
  }, readAll);
}

Deno.test("fuzz: the unpickler on mutated data.pkl (CRC fixed up) ends in success or a typed error", none, () => {
  pickleCases("pickle (built)", baseCheckpoint(), "archive/data.pkl");
});

Deno.test(
  "fuzz: the unpickler on a torch-made data.pkl (memo-heavy, CRC fixed up) ends in success or a typed error",
  none,
  () => {
    const base = torchFuzzBase();
    assertEquals(readPytorchCheckpoint(new CountingSource(base)).tensors.length, 9);
    pickleCases("pickle (torch)", base, "fuzzbase/data.pkl");
  },
);

Deno.test("fuzz: readPytorchCheckpoint() on mutated files ends in success or a typed error", none, () => {
  const base = baseCheckpoint();
  readAll(new CountingSource(base)); // the base itself must parse
  runCases("pytorch (built)", base, (rnd) => mutate(base, rnd), readAll);
});

Deno.test("fuzz: readPytorchCheckpoint() on mutated torch-made files ends in success or a typed error", none, () => {
  const base = torchFuzzBase();
  readAll(new CountingSource(base));
  runCases("pytorch (torch)", base, (rnd) => mutate(base, rnd), readAll);
});

function findCentralRecord(z: Uint8Array, name: string): number {
  const v = new DataView(z.buffer, z.byteOffset, z.byteLength);
  const cd = v.getUint32(z.length - 22 + 16, true);
  for (let o = cd; o < z.length - 22;) {
    const n = v.getUint16(o + 28, true);
    if (new TextDecoder().decode(z.subarray(o + 46, o + 46 + n)) === name) return o;
    o += 46 + n + v.getUint16(o + 30, true) + v.getUint16(o + 32, true);
  }
  throw new Error(`no central record for ${name}`);
}
