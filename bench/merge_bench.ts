/**
 * Merge benchmark (opt-in: YANGTUO_BENCH_MERGE=1): a generated 7B-shaped f16 base in Hugging Face safetensors
 * (dim 4096, 32 layers, hidden 11008, vocab 49,953, ~13.5 GB in /tmp) + a rank-8 LoRA on q/k/v/o with
 * modules_to_save (like hfl/chinese-llama-lora-7b) → Q4_0 GGUF through `cli.ts merge` in a child process.
 * Reports wall time, MB/s of input files, and the child's peak RSS (VmHWM, polled from /proc). Checks free disk
 * first and deletes everything after. YANGTUO_BENCH_MERGE_LAYERS=N shrinks the depth for a quick run;
 * YANGTUO_BENCH_MERGE_THREADS=N passes -t N to the merge.
 * Validation before timing: the output GGUF is parsed and must hold every tensor at the planned type.
 */
import { FileSource } from "../src/io/mod.ts";
import { readGguf } from "../src/formats/gguf.ts";
import { freeBytes } from "../src/commands/_model_fs.ts";
import { SPEC_7B, tinyHfFiles, tinyLoraFiles, writeTinyFiles } from "../tests/_tiny_model.ts";
import { hostInfo } from "./_host.ts";

const enabled = Deno.env.get("YANGTUO_BENCH_MERGE") === "1";
const layers = Number(Deno.env.get("YANGTUO_BENCH_MERGE_LAYERS") ?? 32);
/** -t for the merge (default: the command's default, all cores). */
const threads = Deno.env.get("YANGTUO_BENCH_MERGE_THREADS");

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) n += e.isFile ? Deno.statSync(`${dir}/${e.name}`).size : 0;
  return n;
}

/** Runs `cli.ts merge` under GNU time, which reports the child's peak RSS (getrusage ru_maxrss). */
async function runMerge(args: string[]): Promise<{ seconds: number; peakRssKiB: number; out: string }> {
  const cmd = new Deno.Command("/usr/bin/time", {
    args: [
      "-f",
      "MAXRSS_KB %M",
      Deno.execPath(),
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      "cli.ts",
      "merge",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    cwd: new URL("..", import.meta.url).pathname,
  });
  const t0 = performance.now();
  const r = await cmd.output();
  const seconds = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`merge failed: ${err}`);
  const m = /MAXRSS_KB (\d+)/.exec(err);
  return { seconds, peakRssKiB: m ? Number(m[1]) : NaN, out: new TextDecoder().decode(r.stdout) };
}

/** Inputs are generated once (the bench runner may call fn more than once) and deleted at exit. */
let inputs: { dir: string; inputBytes: number; genSeconds: number } | undefined;

async function generateInputs(): Promise<{ dir: string; inputBytes: number; genSeconds: number }> {
  if (inputs) return inputs;
  const spec = { ...SPEC_7B, nLayers: layers, seed: 7 };
  const free = freeBytes("/tmp") ?? 0;
  const need = 13.5e9 * (layers / 32) * 1.35 + 2e9;
  if (free < need) {
    throw new Error(`merge bench needs ~${(need / 1e9).toFixed(0)} GB free in /tmp, has ${(free / 1e9).toFixed(0)}`);
  }
  const dir = Deno.makeTempDirSync({ prefix: "yangtuo-merge-bench-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const t = performance.now();
  await writeTinyFiles(
    `${dir}/base`,
    tinyHfFiles(spec, { dtype: "F16", shards: Math.max(1, Math.round(layers / 11)) }),
  );
  const tok = Deno.readFileSync(
    new URL("../../shared/data/models/tokenizers/chinese-llama/tokenizer.model", import.meta.url),
  );
  await writeTinyFiles(
    `${dir}/lora`,
    tinyLoraFiles(spec, {
      r: 8,
      alpha: 32,
      targetModules: ["q_proj", "v_proj", "k_proj", "o_proj"],
      modulesToSave: ["embed_tokens", "lm_head"],
      vocabSize: 49953,
      seed: 3,
      tokenizerModel: tok,
    }),
  );
  inputs = {
    dir,
    inputBytes: dirBytes(`${dir}/base`) + dirBytes(`${dir}/lora`),
    genSeconds: (performance.now() - t) / 1000,
  };
  return inputs;
}

Deno.bench({
  name: `merge 7B-shape f16 HF (${layers} layers) + rank-8 LoRA -> Q4_0 GGUF (-t ${threads ?? "all"})`,
  ignore: !enabled,
  n: 1,
  warmup: 0,
  async fn(b) {
    const { dir, inputBytes, genSeconds } = await generateInputs();
    try {
      Deno.removeSync(`${dir}/out`, { recursive: true });
    } catch { /* first run */ }
    b.start();
    const r = await runMerge([
      "--base-model",
      `${dir}/base`,
      "--lora-model",
      `${dir}/lora`,
      "--output-dir",
      `${dir}/out`,
      "--quant",
      "q4_0",
      ...(threads ? ["-t", threads] : []),
    ]);
    b.end();
    const out = `${dir}/out/ggml-model-q4_0.gguf`;
    using src = new FileSource(out);
    const g = readGguf(src);
    const q4 = g.tensors.filter((x) => x.dtype === "Q4_0").length;
    if (g.tensors.length !== 2 + 9 * layers + 1 || q4 !== 2 + 7 * layers) throw new Error("bad merge output");
    console.error(hostInfo().line);
    console.error(
      `merge bench: generated ${(inputBytes / 1e9).toFixed(2)} GB of input in ${genSeconds.toFixed(0)} s; ` +
        `merge ${r.seconds.toFixed(1)} s wall = ${(inputBytes / 1e6 / r.seconds).toFixed(0)} MB/s of input files, ` +
        `peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB, output ${
          (Deno.statSync(out).size / 1e9).toFixed(2)
        } GB\n${r.out}`,
    );
  },
});
