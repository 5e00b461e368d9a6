/**
 * Zip reader/writer tests. Oracles: CPython's zipfile (reads our archives with CRC checks; writes the ZIP64,
 * 65,536-entry and deflated archives we read), the CRC-32 check value "123456789" → 0xCBF43926 (ISO 3309),
 * round trips, and hand-patched hostile archives (one named test per failure kind, truncation at every byte).
 */
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { crc32, crc32Ref, readZip, readZipEntry, verifyZipEntry, ZipWriter } from "../../src/formats/zip.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { needsPython, runPython, tempDir } from "./_torch_oracle.ts";

/** Tests without an external oracle run with no permissions: the readers are pure. */
const none = { permissions: "none" } as const;

const enc = new TextEncoder();

function sampleZip(entries: [string, Uint8Array][] = defaultEntries(), forceZip64 = false): Uint8Array {
  const sink = new BytesSink();
  const w = new ZipWriter(sink, { forceZip64 });
  for (const [n, b] of entries) w.add(n, b);
  w.finish();
  return sink.bytes();
}

function defaultEntries(): [string, Uint8Array][] {
  const rnd = mulberry32(7);
  const data = new Uint8Array(100).map(() => Math.floor(rnd() * 256));
  return [["a/data.pkl", enc.encode("pickle-bytes")], ["a/data/0", data], ["a/version", enc.encode("3\n")]];
}

/** Offsets of the end record, the central directory and each central record of an archive without comment. */
function layout(z: Uint8Array): { eocd: number; cd: number; records: number[] } {
  const v = new DataView(z.buffer, z.byteOffset, z.byteLength);
  const eocd = z.length - 22;
  const n = v.getUint16(eocd + 10, true);
  const cd = v.getUint32(eocd + 16, true);
  const records: number[] = [];
  let o = cd;
  for (let i = 0; i < n; i++) {
    records.push(o);
    o += 46 + v.getUint16(o + 28, true) + v.getUint16(o + 30, true) + v.getUint16(o + 32, true);
  }
  return { eocd, cd, records };
}

function patch(z: Uint8Array, f: (v: DataView, l: ReturnType<typeof layout>) => void): Uint8Array {
  const c = z.slice();
  f(new DataView(c.buffer), layout(c));
  return c;
}

Deno.test("crc32() and crc32Ref() match the CRC-32 check value, each other, and are chunkable", none, () => {
  for (const f of [crc32, crc32Ref]) {
    assertEquals(f(enc.encode("123456789")), 0xcbf43926);
    assertEquals(f(enc.encode("123456789".repeat(10))), crc32Ref(enc.encode("123456789".repeat(10))));
    assertEquals(f(new Uint8Array(0)), 0);
  }
  const rnd = mulberry32(1);
  const b = new Uint8Array(5000).map(() => Math.floor(rnd() * 256));
  assertEquals(crc32(b.subarray(333), crc32(b.subarray(0, 333))), crc32Ref(b));
  for (const n of [1, 7, 8, 9, 63, 64, 65, 4099]) {
    assertEquals(crc32(b.subarray(1, 1 + n)), crc32Ref(b.subarray(1, 1 + n)), `n=${n}`);
  }
});

Deno.test("readZip() round-trips ZipWriter entries with 64-byte aligned data", none, () => {
  const entries = defaultEntries();
  const z = sampleZip(entries);
  const src = new BytesSource(z);
  const zip = readZip(src);
  assertEquals(zip.entries.map((e) => e.name), entries.map(([n]) => n));
  for (const [n, b] of entries) {
    const e = zip.byName.get(n)!;
    assertEquals(e.dataOffset % 64, 0);
    assertEquals(readZipEntry(src, e), b);
  }
  assertEquals(zip.zip64, false);
});

Deno.test("ZipWriter archives pass CPython zipfile's CRC check, with forced ZIP64 too", needsPython(), () => {
  const dir = tempDir();
  for (const force of [false, true]) {
    const p = `${dir}/w${force}.zip`;
    Deno.writeFileSync(p, sampleZip(defaultEntries(), force));
    const out = runPython(
      `import zipfile,sys,json
z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None
print(json.dumps({i.filename: [i.file_size, i.CRC] for i in z.infolist()}))`,
      p,
    );
    const got = JSON.parse(out);
    for (const [n, b] of defaultEntries()) assertEquals(got[n], [b.length, crc32(b)]);
    assertEquals(readZip(new BytesSource(Deno.readFileSync(p))).zip64, force);
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("readZip() reads CPython zipfile archives: stored entries and zip64 extra fields", needsPython(), () => {
  const dir = tempDir();
  runPython(
    `import zipfile,sys
d=sys.argv[1]
with zipfile.ZipFile(d+'/s.zip','w') as z:
  z.writestr('x/a', b'hello'); z.writestr('x/b', bytes(range(256)))
with zipfile.ZipFile(d+'/z64.zip','w') as z:
  with z.open('x/big','w',force_zip64=True) as f: f.write(b'0123456789'*7)
  z.writestr('x/c', b'tail')`,
    dir,
  );
  const s = new BytesSource(Deno.readFileSync(`${dir}/s.zip`));
  const zs = readZip(s);
  assertEquals(new TextDecoder().decode(readZipEntry(s, zs.byName.get("x/a")!)), "hello");
  assertEquals(readZipEntry(s, zs.byName.get("x/b")!), new Uint8Array(256).map((_, i) => i));
  const z64 = new BytesSource(Deno.readFileSync(`${dir}/z64.zip`));
  const big = readZip(z64).byName.get("x/big")!;
  assertEquals(new TextDecoder().decode(readZipEntry(z64, big)), "0123456789".repeat(7));
  Deno.removeSync(dir, { recursive: true });
});

// CPython's reading of our ZIP64 end records is checked above with forceZip64 (the same code path, count field
// 0xFFFF); here the entry count itself passes 65,535.
Deno.test("ZipWriter switches to ZIP64 past 65,535 entries and readZip reads all of them", none, () => {
  const entries: [string, Uint8Array][] = [];
  for (let i = 0; i < 65537; i++) entries.push([`m/${i}`, enc.encode(String(i))]);
  const src = new BytesSource(sampleZip(entries));
  const zip = readZip(src);
  assert(zip.zip64);
  assertEquals(zip.entries.length, 65537);
  assertEquals(new TextDecoder().decode(readZipEntry(src, zip.byName.get("m/65536")!)), "65536");
  const v = new DataView(src.bytes.buffer, src.bytes.byteOffset, src.bytes.byteLength);
  assertEquals(v.getUint16(src.size - 22 + 10, true), 0xffff, "end record count defers to ZIP64");
});

/** A ByteSink that keeps headers but only counts long runs of data (for a > 4 GiB archive in a few KB). */
class SparseSink {
  position = 0;
  chunks: { at: number; bytes?: Uint8Array; n: number }[] = [];
  write(b: Uint8Array): void {
    this.chunks.push({ at: this.position, bytes: b.length <= 4096 ? b.slice() : undefined, n: b.length });
    this.position += b.length;
  }
  source(): BytesSource & { size: number } {
    const size = this.position;
    const chunks = this.chunks;
    const readInto = (off: number, dst: Uint8Array) => {
      dst.fill(0);
      for (const c of chunks) {
        if (!c.bytes || c.at + c.n <= off || c.at >= off + dst.length) continue;
        const s = Math.max(off, c.at), e = Math.min(off + dst.length, c.at + c.n);
        dst.set(c.bytes.subarray(s - c.at, e - c.at), s - off);
      }
    };
    return {
      size,
      bytes: new Uint8Array(0),
      read(off: number, n: number) {
        const d = new Uint8Array(n);
        readInto(off, d);
        return d;
      },
      readInto,
    } as unknown as BytesSource;
  }
}

// Streams 4 GiB through the CRC (~0.6 s with node:zlib's crc32; ~6 s with crc32Ref) into a sink that keeps
// only headers.
Deno.test("ZipWriter writes ZIP64 sizes and offsets for a > 4 GiB entry that readZip reads back", none, () => {
  const sink = new SparseSink();
  const w = new ZipWriter(sink);
  const big = 2 ** 32 + 100;
  const chunk = new Uint8Array(1 << 24);
  w.addStreamed("a/data/0", big, (write) => {
    for (let left = big; left > 0; left -= chunk.length) write(left >= chunk.length ? chunk : chunk.subarray(0, left));
  });
  w.add("a/version", enc.encode("3\n"));
  w.finish();
  const zip = readZip(sink.source());
  assert(zip.zip64);
  assertEquals(zip.byName.get("a/data/0")!.nBytes, big);
  const v = zip.byName.get("a/version")!;
  assert(v.localHeaderOffset > 2 ** 32);
  assertEquals(v.dataOffset % 64, 0);
  assertEquals(new TextDecoder().decode(readZipEntry(sink.source(), v)), "3\n");
});

Deno.test("ZipWriter rejects a callback that writes the wrong number of bytes", none, () => {
  const w = new ZipWriter(new BytesSink());
  assertThrows(() => w.addStreamed("a/x", 4, (write) => write(new Uint8Array(3))), RangeError, "wrote 3 bytes");
  const w2 = new ZipWriter(new BytesSink());
  assertThrows(() => w2.addStreamed("a/x", 2, (write) => write(new Uint8Array(3))), RangeError, "more than");
});

// ---- hostile input ----

Deno.test("readZip() rejects a file with no end of central directory record", none, () => {
  assertThrows(() => readZip(new BytesSource(new Uint8Array(1000).fill(7))), FormatError, "end of central directory");
  assertThrows(() => readZip(new BytesSource(new Uint8Array(5))), FormatError, "fewer than an end record");
});

Deno.test("readZip() rejects an entry count larger than the central directory holds", none, () => {
  const z = patch(sampleZip(), (v, l) => {
    v.setUint16(l.eocd + 8, 60000, true);
    v.setUint16(l.eocd + 10, 60000, true);
  });
  assertThrows(() => readZip(new BytesSource(z)), FormatError, "entry count 60000 exceeds");
});

Deno.test("readZip() rejects a central directory outside the file", none, () => {
  const z = patch(sampleZip(), (v, l) => v.setUint32(l.eocd + 16, 0x7fff0000, true));
  assertThrows(() => readZip(new BytesSource(z)), FormatError, "central directory");
});

Deno.test("readZip() rejects an entry whose local header points outside the file", none, () => {
  const z = patch(sampleZip(), (v, l) => v.setUint32(l.records[1] + 42, 0x7ffffff0, true));
  assertThrows(() => readZip(new BytesSource(z)), FormatError, "runs past the central directory");
});

Deno.test("readZip() rejects a zip bomb: declared size larger than the file", none, () => {
  const z = patch(sampleZip(), (v, l) => {
    v.setUint32(l.records[1] + 20, 0xfffffff0, true);
    v.setUint32(l.records[1] + 24, 0xfffffff0, true);
  });
  assertThrows(() => readZip(new BytesSource(z)), FormatError, "runs past the central directory");
});

Deno.test("readZip() rejects overlapping entries", none, () => {
  const z = patch(sampleZip(), (v, l) => v.setUint32(l.records[1] + 42, 0, true));
  assertThrows(() => readZip(new BytesSource(z)), FormatError, "overlap");
});

Deno.test("readZip() rejects duplicate entry names", none, () => {
  const z = sampleZip([["a/x", enc.encode("1")], ["a/y", enc.encode("2")]]);
  const c = patch(z, (v, l) => v.setUint8(l.records[1] + 46 + 2, "x".charCodeAt(0)));
  assertThrows(() => readZip(new BytesSource(c)), FormatError, 'duplicate entry name "a/x"');
});

Deno.test("readZip() rejects a bad local header signature", none, () => {
  const z = patch(sampleZip(), (v) => v.setUint32(0, 0x12345678, true));
  assertThrows(() => readZip(new BytesSource(z)), FormatError, "bad local header signature");
});

Deno.test("readZip() rejects a bad central directory signature", none, () => {
  const z = patch(sampleZip(), (v, l) => v.setUint32(l.records[0], 0, true));
  assertThrows(() => readZip(new BytesSource(z)), FormatError, "bad central directory signature");
});

Deno.test("readZip() rejects compressed entries with UnsupportedError", needsPython(), () => {
  const dir = tempDir();
  runPython(
    `import zipfile,sys
with zipfile.ZipFile(sys.argv[1],'w',compression=zipfile.ZIP_DEFLATED) as z: z.writestr('x/a', b'a'*1000)`,
    `${dir}/d.zip`,
  );
  assertThrows(() => readZip(new BytesSource(Deno.readFileSync(`${dir}/d.zip`))), UnsupportedError, "method 8");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("readZip() rejects encrypted entries with UnsupportedError", none, () => {
  const z = patch(sampleZip(), (v, l) => v.setUint16(l.records[0] + 8, 0x0809, true));
  assertThrows(() => readZip(new BytesSource(z)), UnsupportedError, "encrypted");
});

Deno.test("readZip() rejects a stored entry whose compressed and real sizes differ", none, () => {
  const z = patch(sampleZip(), (v, l) => v.setUint32(l.records[1] + 20, 5, true));
  assertThrows(() => readZip(new BytesSource(z)), FormatError, "compressed size 5");
});

Deno.test("readZip() rejects a ZIP64 locator pointing past itself", none, () => {
  const z = sampleZip(defaultEntries(), true);
  const c = z.slice();
  const v = new DataView(c.buffer);
  v.setBigUint64(z.length - 22 - 20 + 8, 0xffff_ffffn, true);
  assertThrows(() => readZip(new BytesSource(c)), FormatError, "ZIP64 end record offset");
});

Deno.test("verifyZipEntry() streams an entry's CRC-32 in chunks and rejects a flipped bit", none, () => {
  const z = sampleZip();
  const e = readZip(new BytesSource(z)).byName.get("a/data/0")!;
  verifyZipEntry(new BytesSource(z), e, { chunkBytes: 7 });
  const c = z.slice();
  c[e.dataOffset + e.nBytes - 1] ^= 0x80;
  assertThrows(() => verifyZipEntry(new BytesSource(c), e, { chunkBytes: 7 }), FormatError, "CRC-32");
});

Deno.test("readZipEntry() rejects data that fails its CRC-32", none, () => {
  const z = sampleZip();
  const zip = readZip(new BytesSource(z));
  const e = zip.byName.get("a/data/0")!;
  const c = z.slice();
  c[e.dataOffset + 5] ^= 1;
  assertThrows(() => readZipEntry(new BytesSource(c), e), FormatError, "CRC-32");
});

Deno.test("readZip() throws FormatError for every truncation of a valid archive", none, () => {
  const z = sampleZip();
  const t0 = performance.now();
  for (let n = 0; n < z.length; n++) {
    assertThrows(() => readZip(new BytesSource(z.subarray(0, n))), FormatError);
  }
  assert(performance.now() - t0 < 2000, "truncation cases took too long");
});
