/**
 * The Deno side of src/merge: ModelFs over the real file system, and writing a list of OutputFiles into a folder
 * through a hidden staging folder, so the outputs appear under their final names only when all are complete.
 */
import { statfsSync } from "node:fs";
import { UserError } from "../core/errors.ts";
import { AtomicFileSink, FileSource } from "../io/mod.ts";
import { interruptibleSink, onInterrupt } from "./_interrupt.ts";

export { interruptibleSink };
import type { ModelFs } from "../merge/open.ts";
import type { OutputFile } from "../merge/write.ts";

/** ModelFs over Deno's file system. */
export const denoModelFs: ModelFs = {
  kind(path) {
    try {
      const s = Deno.statSync(path);
      return s.isDirectory ? "dir" : s.isFile ? "file" : undefined;
    } catch {
      return undefined;
    }
  },
  list(dir) {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  },
  readText(path) {
    return Deno.readTextFileSync(path);
  },
  readBytes(path) {
    return Deno.readFileSync(path);
  },
  open(path) {
    return new FileSource(path);
  },
};

/** Prefix of the staging folders (and of AtomicFileSink temp files). */
export const STAGING_PREFIX = ".yangtuo-partial-";

/** Refuses an --output-dir that exists as a file (cheap: run it before any work); returns its stat, if it exists. */
export function checkOutputDir(dir: string): Deno.FileInfo | undefined {
  let stat: Deno.FileInfo | undefined;
  try {
    stat = Deno.statSync(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (stat && !stat.isDirectory) {
    throw new UserError(`Cannot write to "${dir}": it is a file, not a folder`, "--output-dir expects a folder");
  }
  return stat;
}

/**
 * Refuses a non-empty output folder unless `force`; leftovers of an interrupted run (staging folders, temp files)
 * do not count and are removed.
 */
export function prepareOutputDir(dir: string, force: boolean): void {
  let names: string[] = [];
  const stat = checkOutputDir(dir);
  if (!stat) {
    try {
      Deno.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw outputDirError(dir, e);
    }
    return;
  }
  names = [...Deno.readDirSync(dir)].map((e) => e.name);
  // can we write here at all? (a read-only mount or a folder without write permission fails now, not after the work)
  try {
    Deno.removeSync(Deno.makeTempDirSync({ dir, prefix: STAGING_PREFIX }));
  } catch (e) {
    throw outputDirError(dir, e);
  }
  for (const n of names) {
    if (n.startsWith(STAGING_PREFIX) || n.startsWith(".yangtuo-tmp-")) {
      Deno.removeSync(`${dir}/${n}`, { recursive: true });
    }
  }
  const rest = names.filter((n) => !n.startsWith(STAGING_PREFIX) && !n.startsWith(".yangtuo-tmp-"));
  if (rest.length > 0 && !force) {
    throw new UserError(
      `Cannot write to "${dir}": the folder is not empty (${rest.slice(0, 3).join(", ")}${
        rest.length > 3 ? ", …" : ""
      })`,
      "choose an empty --output-dir, or pass --force to overwrite files with the same names",
    );
  }
}

/**
 * Checks an input path before any work: it exists and is a file (`"file"`), a folder (`"dir"`) or either (`"any"`).
 * Throws UserError naming the path, with a hint naming `flag` (the command's own words).
 */
export function checkInputPath(path: string, kind: "file" | "dir" | "any", flag: string): void {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot read "${path}": no such file or folder`, `check the path given with ${flag}`);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new UserError(`Cannot read "${path}": permission denied by the OS`, "check the path's permissions");
    }
    throw e;
  }
  if (kind === "file" && !stat.isFile) {
    throw new UserError(`Cannot read "${path}": it is a folder, not a file`, `${flag} expects a file`);
  }
  if (kind === "dir" && !stat.isDirectory) {
    throw new UserError(`Cannot read "${path}": it is a file, not a folder`, `${flag} expects a folder`);
  }
}

/**
 * Checks an output file path before any work: not a folder, its folder exists, and (unless `force`) nothing is there
 * yet. Throws UserError naming the path.
 */
export function checkOutputFile(path: string, force: boolean): void {
  let stat: Deno.FileInfo | undefined;
  try {
    stat = Deno.statSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (stat?.isDirectory) {
    throw new UserError(`Cannot write "${path}": it is a folder`, "give the output a file name, e.g. DIR/model.gguf");
  }
  if (stat && !force) throw new UserError(`Cannot write "${path}": it exists`, "pass --force to overwrite it");
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  let dirStat: Deno.FileInfo;
  try {
    dirStat = Deno.statSync(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot write "${path}": the folder "${dir}" does not exist`, "create it first");
    }
    throw e;
  }
  if (!dirStat.isDirectory) throw new UserError(`Cannot write "${path}": "${dir}" is not a folder`);
}

/** A UserError naming the output folder (not an internal staging path) for an OS refusal to write there. */
function outputDirError(dir: string, e: unknown): unknown {
  if (e instanceof Deno.errors.NotCapable) return e; // Deno's sandbox: the error boundary explains the task's scope
  const m = (e as Error).message ?? "";
  if (e instanceof Deno.errors.PermissionDenied || /read-only|os error 30|permission denied/i.test(m)) {
    const why = /read-only|os error 30/i.test(m) ? "the file system is read-only" : "permission denied by the OS";
    return new UserError(`Cannot write to "${dir}": ${why}`, "choose a writable --output-dir");
  }
  return e;
}

/**
 * Free bytes on the file system holding `path`, via statfs (needs --allow-sys=statfs); undefined when the
 * permission is missing or the call fails.
 */
export function freeBytes(path: string): number | undefined {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

/** Throws UserError when `need` bytes will not fit at `dir` (10% + 64 MB margin); returns a warning when unknown. */
export function checkDiskSpace(dir: string, need: number): string | undefined {
  const free = freeBytes(dir);
  if (free === undefined) {
    return `cannot check free disk space at "${dir}" (grant --allow-sys=statfs); need ~${gb(need)}`;
  }
  if (need * 1.1 + 64e6 > free) {
    throw new UserError(
      `Cannot write ${gb(need)} to "${dir}": only ${gb(free)} free`,
      "free some disk space or choose another --output-dir (q4_0 output needs about a quarter of f16)",
    );
  }
  return undefined;
}

const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;

/**
 * Writes one file atomically: `write` fills an interruptibleSink for `path`, which is committed when it resolves and
 * removed when it throws (or on Ctrl+C). Returns what `write` returned and the bytes written.
 */
export async function writeFileInterruptible<T>(
  path: string,
  write: (sink: AtomicFileSink) => Promise<T>,
): Promise<{ result: T; nBytes: number }> {
  const { sink, release } = interruptibleSink(path);
  try {
    const result = await write(sink);
    sink.commit();
    return { result, nBytes: sink.position };
  } catch (e) {
    sink.abort();
    throw e;
  } finally {
    release();
  }
}

/**
 * Writes `files` into `dir`: each into a staging folder inside `dir` (atomic temp + rename there), then all renamed
 * into place; any error removes the staging folder. `between` runs between files (progress, yielding).
 */
export async function writeOutputFiles(dir: string, files: OutputFile[]): Promise<void> {
  const staging = `${dir}/${STAGING_PREFIX}${crypto.randomUUID().slice(0, 8)}`;
  let sink: AtomicFileSink | undefined;
  // the handler goes in before the staging folder exists: a SIGINT in between would otherwise leave it behind
  const release = onInterrupt(() => {
    sink?.abort();
    try {
      Deno.removeSync(staging, { recursive: true });
    } catch { /* not created yet */ }
  });
  try {
    Deno.mkdirSync(staging);
    for (const f of files) {
      sink = new AtomicFileSink(`${staging}/${f.path}`);
      try {
        await f.write(sink);
        sink.commit();
      } catch (e) {
        sink.abort();
        throw e;
      }
    }
    for (const f of files) Deno.renameSync(`${staging}/${f.path}`, `${dir}/${f.path}`);
    Deno.removeSync(staging, { recursive: true });
  } catch (e) {
    try {
      Deno.removeSync(staging, { recursive: true });
    } catch { /* already gone */ }
    throw e;
  } finally {
    release();
  }
}
