/**
 * Format benchmarks: reading one tensor from the middle of a > 4 GiB GGUF and safetensors file costs time and
 * memory proportional to that tensor, not to the file. The files are SPARSE: the header is written by our writers'
 * header encoders, only the two middle tensors get real bytes (at their offsets), and the rest is a hole made by
 * truncate — so creating them takes well under a second and ~70 MB of disk. Deleted on exit.
 * Every read is validated against the bytes written before anything is timed; RSS before/after one 64 MiB read is
 * printed. Set YANGTUO_BENCH_FORMATS=0 to skip (creation is fast, so it runs by default).
 * Run: deno bench --allow-read --allow-write=/tmp --allow-env bench/formats_bench.ts
 */
import { readGguf, readTensorBytes } from "../src/formats/gguf.ts";
import { encodeGgufHeader, ggufKv, type GgufWriterTensor } from "../src/formats/gguf_writer.ts";
import { encodeSafetensorsHeader, readSafetensors } from "../src/formats/safetensors.ts";
import { FileSource } from "../src/io/file_source.ts";
import type { TensorInfo } from "../src/core/tensor.ts";
import { hostInfo } from "./_host.ts";

const enabled = Deno.env.get("YANGTUO_BENCH_FORMATS") !== "0";

const BIG_ROWS = 8192, BIG_COLS = 4096; // F16 [8192, 4096] = 64 MiB, like a 7B-class projection
const N_BIG = 65; // 65 × 64 MiB = 4.06 GiB of tensor data
const MID = 32; // index of the big tensor we read; a 4 KiB tensor sits right before it
const SMALL = 1024; // F32 [1024] = 4 KiB

function fill(n: number, seed: number): Uint8Array {
  const u8 = new Uint8Array(n);
  const u32 = new Uint32Array(u8.buffer);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < u32.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    u32[i] = s >>> 0;
  }
  return u8;
}

function specTensors(): GgufWriterTensor[] {
  const none = new Uint8Array(0); // headers only: data is never taken from here
  const ts: GgufWriterTensor[] = [];
  for (let i = 0; i < N_BIG; i++) {
    if (i === MID) ts.push({ name: "mid.small", dtype: "F32", shape: [SMALL], data: none });
    ts.push({ name: `blk.${i}.ffn_up.weight`, dtype: "F16", shape: [BIG_ROWS, BIG_COLS], data: none });
  }
  return ts;
}

const bigBytes = fill(BIG_ROWS * BIG_COLS * 2, 42);
const smallBytes = fill(SMALL * 4, 7);
const BIG_NAME = `blk.${MID}.ffn_up.weight`;

/** Writes `header` at 0 and the two middle tensors at their offsets, then extends the file to `size` (a hole). */
function writeSparse(path: string, header: Uint8Array, infos: TensorInfo[], size: number): void {
  using f = Deno.openSync(path, { write: true, create: true, truncate: true });
  const writeAt = (off: number, b: Uint8Array) => {
    f.seekSync(off, Deno.SeekMode.Start);
    let done = 0;
    while (done < b.length) done += f.writeSync(b.subarray(done));
  };
  writeAt(0, header);
  writeAt(infos.find((t) => t.name === "mid.small")!.byteOffset, smallBytes);
  writeAt(infos.find((t) => t.name === BIG_NAME)!.byteOffset, bigBytes);
  f.truncateSync(size);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 4093) if (a[i] !== b[i]) return false;
  return a[a.length - 1] === b[b.length - 1];
}

const mib = (n: number) => (n / 2 ** 20).toFixed(1);
const tmp = enabled ? Deno.makeTempDirSync({ dir: "/tmp", prefix: "yangtuo-formats-bench-" }) : "";
globalThis.addEventListener("unload", () => {
  if (tmp) Deno.removeSync(tmp, { recursive: true });
});

interface Prepared {
  path: string;
  header: () => TensorInfo[];
}

function prepareGguf(): Prepared {
  const path = `${tmp}/sparse.gguf`;
  const spec = { metadata: [ggufKv.string("general.architecture", "llama")], tensors: specTensors() };
  const { header, alignment, nBytes } = encodeGgufHeader(spec);
  // absolute offsets: cumulative padded sizes after the header (the writer's rule)
  let off = header.length;
  const infos = spec.tensors.map((t, i) => {
    const info = { name: t.name, dtype: t.dtype, shape: [...t.shape], byteOffset: off, nBytes: nBytes[i] };
    off += Math.ceil(nBytes[i] / alignment) * alignment;
    return info;
  });
  writeSparse(path, header, infos, off);
  return {
    path,
    header: () => {
      using src = new FileSource(path);
      return readGguf(src).tensors;
    },
  };
}

function prepareSafetensors(): Prepared {
  const path = `${tmp}/sparse.safetensors`;
  const ts = specTensors();
  const { header, nBytes } = encodeSafetensorsHeader(ts, { format: "pt" });
  let off = header.length;
  const infos = ts.map((t, i) => {
    const info = { name: t.name, dtype: t.dtype, shape: [...t.shape], byteOffset: off, nBytes: nBytes[i] };
    off += nBytes[i];
    return info;
  });
  writeSparse(path, header, infos, off);
  return {
    path,
    header: () => {
      using src = new FileSource(path);
      return readSafetensors(src).tensors;
    },
  };
}

function validateAndReport(label: string, p: Prepared): TensorInfo[] {
  const size = Deno.statSync(p.path).size;
  const t0 = performance.now();
  const tensors = p.header();
  const tHeader = performance.now() - t0;
  const big = tensors.find((t) => t.name === BIG_NAME)!;
  const small = tensors.find((t) => t.name === "mid.small")!;
  using src = new FileSource(p.path);
  const rss0 = Deno.memoryUsage().rss;
  const t1 = performance.now();
  const gotSmall = readTensorBytes(src, small);
  const tSmall = performance.now() - t1;
  const t2 = performance.now();
  const gotBig = readTensorBytes(src, big);
  const tBig = performance.now() - t2;
  const rss1 = Deno.memoryUsage().rss;
  if (!same(gotSmall, smallBytes) || !same(gotBig, bigBytes)) throw new Error(`${label}: read the wrong bytes`);
  console.error(hostInfo().line);
  console.error(
    `${label}: file ${(size / 2 ** 30).toFixed(2)} GiB (${tensors.length} tensors, sparse); header parse ` +
      `${tHeader.toFixed(2)} ms; read 4 KiB tensor at ${mib(small.byteOffset)} MiB in ${tSmall.toFixed(3)} ms; ` +
      `read 64 MiB tensor in ${tBig.toFixed(1)} ms (${(big.nBytes / tBig / 1e6).toFixed(2)} GB/s); ` +
      `RSS +${mib(rss1 - rss0)} MiB for the 64 MiB read (file is ${mib(size)} MiB)`,
  );
  return tensors;
}

if (enabled) {
  for (const [label, prep] of [["gguf", prepareGguf], ["safetensors", prepareSafetensors]] as const) {
    const p = prep();
    const tensors = validateAndReport(label, p);
    const big = tensors.find((t) => t.name === BIG_NAME)!;
    const small = tensors.find((t) => t.name === "mid.small")!;
    const src = new FileSource(p.path);
    Deno.bench(
      { name: `${label} header of a 4 GiB file (${tensors.length} tensors)`, group: label, baseline: true },
      () => {
        p.header();
      },
    );
    Deno.bench({ name: `${label} read 4 KiB tensor mid-file`, group: label }, () => {
      readTensorBytes(src, small);
    });
    Deno.bench({ name: `${label} read 64 MiB F16 tensor mid-file`, group: label, n: 20 }, () => {
      readTensorBytes(src, big);
    });
  }
}
