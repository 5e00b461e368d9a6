/**
 * Interop with llama.cpp itself (opt-in): the GGUFs that `merge` and `quantize` write load in llama.cpp, its
 * tokenizer reads the embedded Chinese-extended vocabulary exactly as ours does, and its first greedy token after a
 * prompt equals ours. Oracle: llama.cpp's prebuilt CPU binary through node-llama-cpp under Node.
 * Opt-in because it needs node-llama-cpp installed (tests never touch the network): set
 * YANGTUO_NODE_LLAMA_CPP to a folder holding node_modules/node-llama-cpp (bench/e2e_bench.ts installs one into
 * /tmp/yangtuo-node-llama-cpp).
 */
import { assertEquals } from "../_assert.ts";

const NLC = Deno.env.get("YANGTUO_NODE_LLAMA_CPP");
const ROOT = new URL("../..", import.meta.url).pathname;
const PROMPT = "用一句话介绍北京。Hello world";

const NODE_SCRIPT = `
import { getLlama } from "node-llama-cpp";
const [modelPath, text] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const tokens = [...model.tokenize(text, false)];
const context = await model.createContext({ contextSize: 256, threads: { ideal: 1, min: 1 } });
const seq = context.getSequence();
let first = -1;
for await (const tok of seq.evaluate([1, ...tokens], { temperature: 0 })) { first = tok; break; }
console.log(JSON.stringify({ tokens, first }));
await context.dispose(); await model.dispose(); await llama.dispose();
`;

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

Deno.test({
  name:
    "llama.cpp loads the demo's merged F16/Q4_0 and the shipped model's GGUFs; tokenizes and predicts as yangtuo does",
  ignore: !NLC,
  async fn() {
    const demo = await run(Deno.execPath(), [
      "run",
      "--allow-read",
      "--allow-write=/tmp",
      "--allow-env",
      "--allow-sys",
      `${ROOT}cli.ts`,
      "demo",
      "--random",
      "--keep",
    ]);
    const dir = /scratch folder: (\S+)/.exec(demo)?.[1];
    if (!dir) throw new Error(`demo printed no scratch folder:\n${demo}`);
    const script = `${NLC}/yangtuo-interop-probe.mjs`;
    Deno.writeTextFileSync(script, NODE_SCRIPT);
    try {
      const shipped = new URL("../../models/yangtuo-poetry/", import.meta.url).pathname;
      const models = [
        ...["f16", "q4_0"].map((type) => [type, `${dir}/merged/ggml-model-${type}.gguf`]),
        // the default model as shipped (with its chat template key), both files
        ...["q8_0", "q4_0"].map((type) => [`yangtuo-poetry ${type}`, `${shipped}yangtuo-poetry-${type}.gguf`]),
      ];
      for (const [type, model] of models) {
        const theirs = JSON.parse(await run("node", [script, model, PROMPT], NLC));
        const ours = JSON.parse(
          await run(Deno.execPath(), [
            "run",
            "--allow-read",
            "--allow-env",
            "--allow-sys",
            `${ROOT}cli.ts`,
            "generate",
            "-m",
            model,
            "-p",
            PROMPT,
            "-n",
            "1",
            "--temp",
            "0",
            "--json",
            "-t",
            "1",
          ]),
        );
        assertEquals(theirs.tokens, ours.prompt_ids.slice(1), `${type}: tokenization`);
        assertEquals(theirs.first, ours.ids[0], `${type}: first greedy token`);
      }
    } finally {
      Deno.removeSync(script);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
