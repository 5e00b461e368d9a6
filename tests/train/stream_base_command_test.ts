/**
 * `pretrain --stream-base on --gradient-checkpointing` (the 7B memory path: layer matrices read from the GGUF one
 * layer at a time, activations recomputed) must train exactly as the default run: the same loss.csv (but for the
 * wall-clock column) and byte-identical adapter files. Oracle: the default (resident, no recompute) run, which
 * pretrain_command_test.ts checks against merge and PyTorch.
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { readLossCsv, runTask, tinySetup } from "./_train_cli.ts";

const ARGS = [
  "--stage",
  "2",
  "--block-size",
  "32",
  "--per-device-train-batch-size",
  "2",
  "--gradient-accumulation-steps",
  "2",
  "--learning-rate",
  "3e-3",
  "--validation-split-percentage",
  "5",
  "--max-eval-samples",
  "8",
  "--max-steps",
  "4",
  "--eval-steps",
  "2",
  "--lora-rank",
  "4",
  "--trainable",
  "q_proj,k_proj,v_proj,o_proj,up_proj",
  "--seed",
  "9",
];

Deno.test("pretrain --stream-base on --gradient-checkpointing writes the same adapter and losses as the default run", async () => {
  const s = await tinySetup();
  const common = ["--base-model", s.gguf, "--tokenizer", s.tokenizer, "--data", `${s.dir}/text.txt`, ...ARGS];
  const plain = await runTask("pretrain", [...common, "--output-dir", `${s.dir}/plain`]);
  assertEquals(plain.code, 0, plain.stderr);
  assertEquals(plain.stderr.includes("streamed from the file"), false, "auto streamed a tiny base");
  const streamed = await runTask("pretrain", [
    ...common,
    "--output-dir",
    `${s.dir}/streamed`,
    "--stream-base",
    "on",
    "--gradient-checkpointing",
  ]);
  assertEquals(streamed.code, 0, streamed.stderr);
  assertStringIncludes(streamed.stderr, "layer matrices streamed from the file one layer at a time");
  for (const f of ["adapter_model.safetensors", "adapter_model.bin", "adapter_config.json"]) {
    assertEquals(Deno.readFileSync(`${s.dir}/streamed/${f}`), Deno.readFileSync(`${s.dir}/plain/${f}`), f);
  }
  const noClock = (rows: Record<string, string>[]) => rows.map(({ elapsed_s: _, ...r }) => r);
  const a = noClock(readLossCsv(`${s.dir}/plain/loss.csv`)), b = noClock(readLossCsv(`${s.dir}/streamed/loss.csv`));
  assertEquals(a.length, 5);
  assertEquals(b, a);
  Deno.removeSync(s.dir, { recursive: true });
});

Deno.test("pretrain --stream-base rejects a value other than auto, on, off (usage error, exit 2)", async () => {
  const r = await runTask("pretrain", [
    "--base-model",
    "x.gguf",
    "--data",
    "x.txt",
    "--output-dir",
    "/tmp/none",
    "--stage",
    "2",
    "--stream-base",
    "maybe",
  ]);
  assertEquals(r.code, 2, r.stderr);
  assertStringIncludes(r.stderr, "--stream-base must be auto, on or off");
});
