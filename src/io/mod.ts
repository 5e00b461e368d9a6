/**
 * io: the only library room that touches Deno.* — positional file reads and atomic writes.
 *
 * @example
 * ```ts ignore
 * import { openFileSource, writeFileAtomic } from "./mod.ts";
 * using src = openFileSource("model.gguf");
 * await writeFileAtomic("copy.bin", (sink) => sink.write(src.read(0, 16)));
 * ```
 */
export * from "./file_source.ts";
export * from "./atomic_file.ts";
