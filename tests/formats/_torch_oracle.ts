/**
 * Oracles for the PyTorch-format tests: real PyTorch (`/usr/bin/python3 -c "import torch"`) and CPython's own
 * zipfile/pickle modules, run as subprocesses. Tests that need them are ignored with a message when absent.
 * Also a counting ByteSource for the fuzz tests' allocation bound.
 */
import type { ByteSource } from "../../src/core/byte_source.ts";
import { checkRange } from "../../src/core/byte_source.ts";

export const PYTHON = "/usr/bin/python3";

function probe(code: string): boolean {
  try {
    const out = new Deno.Command(PYTHON, { args: ["-c", code], stdout: "null", stderr: "null" }).outputSync();
    return out.success;
  } catch {
    return false;
  }
}

let torchOk: boolean | undefined;
let pythonOk: boolean | undefined;

/** True when /usr/bin/python3 can import torch. */
export function hasTorch(): boolean {
  return torchOk ??= probe("import torch");
}

/** True when /usr/bin/python3 runs. */
export function hasPython(): boolean {
  return pythonOk ??= probe("import zipfile, pickle");
}

/** Deno.test options ignoring the test (with a message) when torch is missing. */
export function needsTorch(): { ignore: boolean } {
  const ok = hasTorch();
  if (!ok) console.warn(`skip: PyTorch not importable by ${PYTHON} (apt-get install -y python3-torch)`);
  return { ignore: !ok };
}

/** Deno.test options ignoring the test when python3 is missing. */
export function needsPython(): { ignore: boolean } {
  const ok = hasPython();
  if (!ok) console.warn(`skip: ${PYTHON} not found`);
  return { ignore: !ok };
}

/** Runs a Python script (argv[1..] = args); returns stdout; throws with stderr on failure. */
export function runPython(script: string, ...args: string[]): string {
  const out = new Deno.Command(PYTHON, { args: ["-c", script, ...args], stdout: "piped", stderr: "piped" })
    .outputSync();
  const td = new TextDecoder();
  if (!out.success) throw new Error(`python failed:\n${td.decode(out.stderr)}`);
  return td.decode(out.stdout);
}

/** A fresh temp dir under /tmp. */
export function tempDir(prefix = "yangtuo-pth-"): string {
  return Deno.makeTempDirSync({ dir: "/tmp", prefix });
}

/** A ByteSource over memory that copies every read and records the largest and total bytes read. */
export class CountingSource implements ByteSource {
  readonly size: number;
  maxRead = 0;
  totalRead = 0;
  constructor(readonly bytes: Uint8Array, readonly name?: string) {
    this.size = bytes.length;
  }
  read(byteOffset: number, nBytes: number): Uint8Array {
    checkRange(this, byteOffset, nBytes);
    const dst = new Uint8Array(nBytes);
    this.readInto(byteOffset, dst);
    return dst;
  }
  readInto(byteOffset: number, dst: Uint8Array): void {
    checkRange(this, byteOffset, dst.length);
    this.maxRead = Math.max(this.maxRead, dst.length);
    this.totalRead += dst.length;
    dst.set(this.bytes.subarray(byteOffset, byteOffset + dst.length));
  }
}
