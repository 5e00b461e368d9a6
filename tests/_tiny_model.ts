/**
 * The seeded model/LoRA generator for tests (fixtures/tiny_model.ts), plus writing its files into a folder.
 */
import { writeFileAtomic } from "../src/io/mod.ts";
import type { TinyFile } from "../fixtures/tiny_model.ts";

export * from "../fixtures/tiny_model.ts";

/** Writes generated files into `dir` (created when missing); returns `dir`. */
export async function writeTinyFiles(dir: string, files: TinyFile[]): Promise<string> {
  Deno.mkdirSync(dir, { recursive: true });
  for (const f of files) await writeFileAtomic(`${dir}/${f.path}`, (sink) => f.write(sink));
  return dir;
}
