/**
 * Builds wasm/assembly → wasm/build/kernels.wasm with AssemblyScript 0.28.20 (pinned), release flags.
 * `--check` builds into a temp dir and fails when the committed .wasm differs by a single byte.
 * see: wasm/README.md for the ABI
 */

/**
 * The compiler, pinned. Loaded with a computed specifier so that `deno check` and the project's deno.lock never see
 * it: an npm package in deno.lock makes every `deno task` download it first (102 MB with binaryen), which breaks
 * every task offline. Its integrity lives in tools/build_wasm.lock, the lock only build:wasm and check:wasm use.
 */
export const ASC_SPECIFIER = ["npm:assemblyscript", "0.28.20/asc"].join("@");

/** The part of AssemblyScript's asc API this script uses. */
interface Asc {
  main(
    args: string[],
    options: Record<string, unknown>,
  ): Promise<{ error: Error | null; stderr: { toString(): string } }>;
}

const root = new URL("..", import.meta.url).pathname;
const check = Deno.args.includes("--check");
const debug = Deno.args.includes("--debug");

/** The release flags; changing any of them changes the committed bytes. */
export const ASC_FLAGS = [
  "-O3",
  "--noAssert",
  "--runtime",
  "stub",
  "--enable",
  "simd,relaxed-simd,threads",
  "--importMemory",
  "--sharedMemory",
  "--initialMemory",
  "1",
  "--maximumMemory",
  "65536",
  "--exportRuntime",
];

const outDir = check ? Deno.makeTempDirSync({ prefix: "yangtuo-wasm-" }) : `${root}wasm/build`;
const outFile = `${outDir}/${debug ? "kernels.debug.wasm" : "kernels.wasm"}`;
const flags = debug
  ? [
    "--debug",
    "--runtime",
    "stub",
    "--enable",
    "simd,relaxed-simd,threads",
    "--importMemory",
    "--sharedMemory",
    "--maximumMemory",
    "65536",
  ]
  : ASC_FLAGS;
const args = [`${root}wasm/assembly/index.ts`, "-o", outFile, ...flags];
const asc = (await import(ASC_SPECIFIER)).default as Asc;
const { error, stderr } = await asc.main(args, {});
if (error) {
  console.error(stderr.toString());
  console.error(`error: AssemblyScript build failed: ${error.message}`);
  Deno.exit(1);
}
if (check) {
  const fresh = Deno.readFileSync(outFile);
  let committed: Uint8Array;
  try {
    committed = Deno.readFileSync(`${root}wasm/build/kernels.wasm`);
  } catch {
    console.error("error: wasm/build/kernels.wasm is missing\nhint: run `deno task build:wasm` and commit the result");
    Deno.exit(1);
  }
  Deno.removeSync(outDir, { recursive: true });
  const same = fresh.length === committed.length && fresh.every((b, i) => b === committed[i]);
  if (!same) {
    console.error(
      `error: wasm/build/kernels.wasm is stale (${committed.length} bytes committed, ${fresh.length} bytes built)\n` +
        "hint: run `deno task build:wasm` and commit wasm/build/kernels.wasm with its sources",
    );
    Deno.exit(1);
  }
  console.log(`wasm fresh: kernels.wasm ${fresh.length} bytes matches its sources`);
} else {
  console.log(`built ${outFile} (${Deno.statSync(outFile).size} bytes)`);
}
