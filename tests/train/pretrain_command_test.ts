/**
 * End-to-end tests of `pretrain` and `sft` through the CLI, under the tasks' exact permissions, on a tiny generated
 * GQA LLaMA (GGUF, tokenizer embedded). Oracles: `merge` (a separate command) folding the written adapter into the
 * base must give the model the trainer evaluated (same held-out loss, recomputed here on the merged file); stage 1
 * must leave every transformer tensor byte-identical; an interrupted + resumed run must log the same loss curve as
 * an uninterrupted one (observed agreement of merged vs trainer held-out loss: ~1e-8 absolute, bar 1e-6
 * relative); the trained adapter loads with torch.load under the PEFT keys peft_keys_oracle.py derives.
 */
import { assert, assertAllClose, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import {
  evalMergedGguf,
  ggufTensorBytes,
  heldOutBlocks,
  readLossCsv,
  runTask,
  taskArgs,
  type TinySetup,
  tinySetup,
} from "./_train_cli.ts";
import { CHECKPOINT_FILE } from "../../src/commands/_train_run.ts";
import { BytesSource } from "../../src/core/byte_source.ts";
import { readSafetensors } from "../../src/formats/safetensors.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { ALPACA_SFT_CHAT_TEMPLATE } from "../../src/train/data.ts";
import { templateForModel } from "../../src/chat/templates.ts";
import { buildDemoTokenizer, demoBaseModel } from "../../fixtures/demo_tokenizer.ts";
import { writeSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import { ggufChatTemplate, readSentencePieceModel, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";

const COMMON = [
  "--block-size",
  "32",
  "--per-device-train-batch-size",
  "2",
  "--gradient-accumulation-steps",
  "2",
  "--learning-rate",
  "3e-3",
  "--warmup-ratio",
  "0.1",
  "--validation-split-percentage",
  "5",
  "--max-eval-samples",
  "8",
  "--logging-steps",
  "1",
  "--seed",
  "7",
];

let setup: TinySetup | undefined;
async function tiny(): Promise<TinySetup> {
  setup ??= await tinySetup();
  return setup;
}

async function mergeTo(s: TinySetup, loras: string[], out: string): Promise<string> {
  const r = await runTask("merge", [
    "--base-model",
    s.gguf,
    "--lora-model",
    loras.join(","),
    "--output-dir",
    out,
    "--quant",
    "f32",
  ]);
  assertEquals(r.code, 0, r.stderr);
  return `${out}/ggml-model-f32.gguf`;
}

Deno.test("pretrain --help documents the seed's flags; usage errors exit 2, bad data exits 1 naming the line", async () => {
  const h = await runTask("pretrain", ["--help"]);
  assertEquals(h.code, 0);
  for (const f of ["--lora-rank", "--trainable", "--modules-to-save", "--block-size", "--eval-steps", "--resume"]) {
    assertStringIncludes(h.stdout, f);
  }
  const s = await tiny();
  const noStage = await runTask("pretrain", [
    "--base-model",
    s.gguf,
    "--data",
    `${s.dir}/text.txt`,
    "--output-dir",
    `${s.dir}/x`,
  ]);
  assertEquals(noStage.code, 2);
  assertMatch(noStage.stderr, /error: --stage must be 1 or 2/);
  Deno.writeTextFileSync(`${s.dir}/bad.jsonl`, '{"text":"ok"}\n{"txt":"no"}\n');
  const bad = await runTask("pretrain", [
    "--base-model",
    s.gguf,
    "--data",
    `${s.dir}/bad.jsonl`,
    "--stage",
    "2",
    "--output-dir",
    `${s.dir}/bad-out`,
  ]);
  assertEquals(bad.code, 1);
  assertMatch(bad.stderr, /error: Cannot read line 2: field "text" is missing/);
  assert(!bad.stderr.includes("    at "), "no stack trace");
  const missing = await runTask("pretrain", [
    "--base-model",
    `${s.dir}/nope.gguf`,
    "--data",
    `${s.dir}/text.txt`,
    "--stage",
    "1",
    "--output-dir",
    `${s.dir}/nope-out`,
  ]);
  assertEquals(missing.code, 1);
  assertMatch(missing.stderr, /error: Cannot open base model ".*nope.gguf": not found\nhint: check --base-model/);
  // a smaller tokenizer than the model's rows is refused with the fix
  const model = writeSentencePieceModel({
    ...demoBaseModel(),
    pieces: demoBaseModel().pieces.slice(0, 300),
  });
  Deno.writeFileSync(`${s.dir}/small.model`, model);
  const mismatch = await runTask("pretrain", [
    "--base-model",
    s.gguf,
    "--tokenizer",
    `${s.dir}/small.model`,
    "--data",
    `${s.dir}/text.txt`,
    "--stage",
    "1",
    "--output-dir",
    `${s.dir}/small-out`,
  ]);
  assertEquals(mismatch.code, 1, mismatch.stderr);
  assertMatch(
    mismatch.stderr,
    /error: Cannot train: the tokenizer has 300 tokens but the model has \d+ embedding rows\nhint: /,
  );
  const h2 = await runTask("sft", ["--help"]);
  assertEquals(h2.code, 0);
  assertStringIncludes(h2.stdout, "--max-seq-length");
  assertStringIncludes(h2.stdout, "--lora-model");
});

Deno.test("the pretrain and sft tasks use scoped permissions and --no-prompt (never -A)", () => {
  for (const t of ["pretrain", "sft"]) {
    const a = taskArgs(t);
    assert(a.includes("--no-prompt"), t);
    assert(!a.includes("-A") && !a.includes("--allow-all") && !a.some((x) => x.startsWith("--allow-run")), t);
    assert(!a.some((x) => x.startsWith("--allow-net")), t);
  }
});

Deno.test("pretrain writes nothing outside --output-dir: it runs with write permission for that folder only", async () => {
  const s = await tiny();
  const out = `${s.dir}/scoped`;
  const args = taskArgs("pretrain").map((a) => (a === "--allow-write" ? `--allow-write=${out}` : a));
  assert(args.includes(`--allow-write=${out}`), args.join(" "));
  const p = await new Deno.Command(Deno.execPath(), {
    args: [
      ...args,
      "--base-model",
      s.gguf,
      "--data",
      `${s.dir}/text.txt`,
      "--stage",
      "2",
      "--output-dir",
      out,
      "--max-steps",
      "2",
      "--save-steps",
      "1",
      ...COMMON,
    ],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(p.stderr);
  assertEquals(p.code, 0, err);
  assert(Deno.statSync(`${out}/adapter_config.json`).isFile);
});

Deno.test("pretrain --stage 2 writes a PEFT folder that merge folds into the model the trainer evaluated", async () => {
  const s = await tiny();
  const out = `${s.dir}/pt2`;
  const r = await runTask("pretrain", [
    "--base-model",
    s.gguf,
    "--tokenizer",
    s.tokenizer,
    "--data",
    `${s.dir}/text.txt`,
    "--stage",
    "2",
    "--output-dir",
    out,
    "--max-steps",
    "6",
    "--eval-steps",
    "3",
    "--lora-rank",
    "4",
    "--lora-alpha",
    "8",
    "--trainable",
    "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    ...COMMON,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, /step 3\/6 loss \d+\.\d+ lr \S+ grad-norm \S+ \d+ tok\/s ETA \S+ \| held-out loss/);
  const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  assertEquals(names, [
    "adapter_config.json",
    "adapter_model.bin",
    "adapter_model.safetensors",
    "loss.csv",
    "loss.svg",
    "special_tokens_map.json",
    "tokenizer.model",
    "tokenizer_config.json",
  ]);
  const cfg = JSON.parse(Deno.readTextFileSync(`${out}/adapter_config.json`));
  assertEquals([cfg.r, cfg.lora_alpha, cfg.peft_type, cfg.task_type], [4, 8, "LORA", "CAUSAL_LM"]);
  assertEquals(cfg.modules_to_save, ["embed_tokens", "lm_head"]);
  const rows = readLossCsv(`${out}/loss.csv`);
  assertEquals(rows.map((x) => x.step), ["0", "1", "2", "3", "4", "5", "6"]);
  const ev0 = Number(rows[0].eval_loss), ev6 = Number(rows[6].eval_loss);
  assert(ev6 < ev0, `held-out loss did not drop: ${ev0} → ${ev6}`);
  // the trainer's tensors under PEFT's LlamaForCausalLM keys: torch.load and tests/train/peft_keys_oracle.py
  const torch = await new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch"], stderr: "null" }).output()
    .then((p) => p.success, () => false);
  if (torch) {
    const src = new BytesSource(Deno.readFileSync(`${out}/adapter_model.safetensors`));
    const st = readSafetensors(src);
    const sums = Object.fromEntries(st.tensors.map((t) => {
      const v = new Float32Array(src.read(t.byteOffset, t.nBytes).slice().buffer);
      return [t.name, v.reduce((a, x) => a + Math.abs(x), 0)];
    }));
    const oracle = {
      dir: out,
      dim: s.spec.dim,
      hidden: s.spec.hiddenDim,
      layers: s.spec.nLayers,
      heads: s.spec.nHeads,
      kv_heads: s.spec.nKvHeads,
      vocab: s.spec.vocabSize,
      r: 4,
      targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
      modules_to_save: ["embed_tokens", "lm_head"],
      dtype: "float32",
      abs_sums: sums,
    };
    const p = await new Deno.Command("/usr/bin/python3", {
      args: [new URL("./peft_keys_oracle.py", import.meta.url).pathname, JSON.stringify(oracle)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(p.stdout) + new TextDecoder().decode(p.stderr);
    assert(p.success && /ok \d+ tensors/.test(text), text);
  } else console.warn("skip: torch.load of the trained adapter (python3-torch not installed)");
  const merged = await mergeTo(s, [out], `${s.dir}/pt2-merged`);
  const batch = heldOutBlocks(`${s.dir}/text.txt`, s.tok, 32, 5, 7, 8);
  const mergedLoss = evalMergedGguf(merged, batch);
  assertAllClose([mergedLoss], [ev6], { rtol: 1e-6, msg: "merged model's held-out loss vs the trainer's" });
});

Deno.test("pretrain --stage 1 trains only embeddings/lm_head: after merge every transformer tensor is byte-identical", async () => {
  const s = await tiny();
  const out = `${s.dir}/pt1`;
  // --data as a folder (the seed's --dataset_dir): two files, packed one by one
  const lines = Deno.readTextFileSync(`${s.dir}/text.txt`).trim().split("\n");
  Deno.mkdirSync(`${s.dir}/corpus`);
  Deno.writeTextFileSync(`${s.dir}/corpus/a.txt`, lines.slice(0, 200).join("\n"));
  Deno.writeTextFileSync(
    `${s.dir}/corpus/b.jsonl`,
    lines.slice(200).map((t) => JSON.stringify({ text: t })).join("\n"),
  );
  Deno.writeTextFileSync(`${s.dir}/corpus/notes.md`, "ignored");
  const r = await runTask("pretrain", [
    "--base-model",
    s.gguf,
    "--tokenizer",
    s.tokenizer,
    "--data",
    `${s.dir}/corpus`,
    "--stage",
    "1",
    "--output-dir",
    out,
    "--max-steps",
    "4",
    "--eval-steps",
    "4",
    ...COMMON,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, /data: 2 file\(s\), 400 texts/);
  const cfg = JSON.parse(Deno.readTextFileSync(`${out}/adapter_config.json`));
  assertEquals(cfg.target_modules, []);
  const merged = ggufTensorBytes(await mergeTo(s, [out], `${s.dir}/pt1-merged`));
  const base = ggufTensorBytes(s.gguf);
  let same = 0;
  for (const [name, bytes] of base) {
    if (name === "token_embd.weight" || name === "output.weight") {
      assert(merged.get(name)!.some((b, i) => b !== bytes[i]), `${name} should have changed`);
      continue;
    }
    assertEquals(merged.get(name), bytes, name);
    same++;
  }
  assertEquals(same, base.size - 2);
  const rows = readLossCsv(`${out}/loss.csv`);
  assert(Number(rows.at(-1)!.eval_loss) < Number(rows[0].eval_loss), "stage-1 held-out loss did not drop");
});

Deno.test("pretrain --stage 1 with a larger --tokenizer resizes the embeddings; merge(base, adapter) agrees", async () => {
  const s = await tiny();
  const ext = buildDemoTokenizer();
  Deno.writeFileSync(`${s.dir}/extended.model`, ext.model);
  const extTok = tokenizerFromSentencePiece(readSentencePieceModel(ext.model));
  assert(extTok.vocabSize > s.spec.vocabSize);
  const zh = ["我们的时候", "北京是中国的首都", "你好，羊驼", "介绍一句话的历史"];
  const text = Deno.readTextFileSync(`${s.dir}/text.txt`).split("\n").map((l, i) => `${l} ${zh[i % 4]}`).join("\n");
  Deno.writeTextFileSync(`${s.dir}/zh.txt`, text);
  const out = `${s.dir}/pt1-zh`;
  const r = await runTask("pretrain", [
    "--base-model",
    s.gguf,
    "--tokenizer",
    `${s.dir}/extended.model`,
    "--data",
    `${s.dir}/zh.txt`,
    "--stage",
    "1",
    "--output-dir",
    out,
    "--max-steps",
    "4",
    "--eval-steps",
    "4",
    ...COMMON,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, new RegExp(`resized from ${s.spec.vocabSize} to ${extTok.vocabSize} rows`));
  const rows = readLossCsv(`${out}/loss.csv`);
  const ev = Number(rows.at(-1)!.eval_loss);
  assert(ev < Number(rows[0].eval_loss), "held-out loss did not drop");
  const mergedPath = await mergeTo(s, [out], `${s.dir}/pt1-zh-merged`);
  const merged = ggufTensorBytes(mergedPath);
  const base = ggufTensorBytes(s.gguf);
  assertEquals(merged.get("token_embd.weight")!.length, extTok.vocabSize * s.spec.dim * 4);
  for (const [name, bytes] of base) {
    if (name !== "token_embd.weight" && name !== "output.weight") assertEquals(merged.get(name), bytes, name);
  }
  const mergedLoss = evalMergedGguf(mergedPath, heldOutBlocks(`${s.dir}/zh.txt`, extTok, 32, 5, 7, 8));
  assertAllClose([mergedLoss], [ev], { rtol: 1e-6, msg: "merged resized model vs trainer" });
});

Deno.test("Ctrl+C saves a checkpoint and no adapter; --resume then logs exactly the uninterrupted loss curve", async () => {
  const s = await tiny();
  const args = (out: string) => [
    "--base-model",
    s.gguf,
    "--data",
    `${s.dir}/text.txt`,
    "--stage",
    "2",
    "--output-dir",
    out,
    "--max-steps",
    "8",
    "--eval-steps",
    "4",
    "--save-steps",
    "3",
    "--lora-dropout",
    "0.1",
    ...COMMON,
  ];
  const full = await runTask("pretrain", args(`${s.dir}/full`));
  assertEquals(full.code, 0, full.stderr);
  // interrupted run: SIGINT once step 2 is logged
  const out = `${s.dir}/cut`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("pretrain"), ...args(out)],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", YANGTUO_PROGRESS: "0" },
  }).spawn();
  let err = "";
  const dec = new TextDecoder();
  let sent = false;
  for await (const chunk of child.stderr) {
    err += dec.decode(chunk);
    if (!sent && /step 2\/8/.test(err)) {
      child.kill("SIGINT");
      sent = true;
    }
  }
  await child.stdout.cancel();
  const status = await child.status;
  assert(sent, err);
  assertEquals(status.code, 130, err);
  assertMatch(err, /checkpoint saved at step \d/);
  const names = [...Deno.readDirSync(out)].map((e) => e.name);
  assert(names.includes(CHECKPOINT_FILE), names.join());
  assert(!names.includes("adapter_config.json") && !names.some((n) => n.startsWith("adapter_model")), names.join());
  assert(!names.some((n) => n.startsWith(".yangtuo-")), `temp files left: ${names.join()}`);
  const again = await runTask("pretrain", args(out));
  assertEquals(again.code, 1);
  assertMatch(again.stderr, /unfinished run\nhint: add --resume/);
  // a damaged checkpoint is refused with a clear error, not resumed from
  const damaged = `${s.dir}/damaged`;
  Deno.mkdirSync(damaged);
  const ck = Deno.readFileSync(`${out}/${CHECKPOINT_FILE}`);
  ck[ck.length - 9] ^= 0x40;
  Deno.writeFileSync(`${damaged}/${CHECKPOINT_FILE}`, ck);
  const bad = await runTask("pretrain", [...args(damaged), "--resume"]);
  assertEquals(bad.code, 1, bad.stderr);
  assertMatch(bad.stderr, /error: Cannot read checkpoint: CRC-32[^\n]*\nhint: the checkpoint is damaged/);
  // resumed on 2 threads: the WASM products split rows bit-identically, so the curve must still match
  const resumed = await runTask("pretrain", [...args(out), "--resume", "--threads", "2"]);
  assertEquals(resumed.code, 0, resumed.stderr);
  assertMatch(resumed.stderr, /resumed from .* at step \d\/8/);
  const strip = (rows: Record<string, string>[]) => rows.map(({ elapsed_s: _, ...rest }) => rest);
  assertEquals(strip(readLossCsv(`${out}/loss.csv`)), strip(readLossCsv(`${s.dir}/full/loss.csv`)));
  assertEquals(
    Deno.readFileSync(`${out}/adapter_model.safetensors`),
    Deno.readFileSync(`${s.dir}/full/adapter_model.safetensors`),
  );
  assert(!Deno.readDirSync(out).some((e) => e.name === CHECKPOINT_FILE), "checkpoint removed after success");
  // a resume with other flags is refused
  const other = await runTask("pretrain", [...args(`${s.dir}/full`), "--resume", "--learning-rate", "1e-3"]);
  assertEquals(other.code, 1);
});

Deno.test("sft --lora-model merges the stage-2 adapter first; merge(base, A, sft) is the model the trainer evaluated", async () => {
  const s = await tiny();
  const pt = `${s.dir}/sft-pt`;
  const p = await runTask("pretrain", [
    "--base-model",
    s.gguf,
    "--tokenizer",
    s.tokenizer,
    "--data",
    `${s.dir}/text.txt`,
    "--stage",
    "2",
    "--output-dir",
    pt,
    "--max-steps",
    "2",
    ...COMMON,
  ]);
  assertEquals(p.code, 0, p.stderr);
  const records = Array.from({ length: 60 }, (_, i) => ({
    instruction: `say the number ${i % 10}`,
    input: i % 3 === 0 ? "as a word" : "",
    output: ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][i % 10],
  }));
  Deno.writeTextFileSync(`${s.dir}/alpaca.json`, JSON.stringify(records));
  const out = `${s.dir}/sft`;
  const r = await runTask("sft", [
    "--base-model",
    s.gguf,
    "--lora-model",
    pt,
    "--data",
    `${s.dir}/alpaca.json`,
    "--output-dir",
    out,
    "--max-steps",
    "6",
    "--eval-steps",
    "6",
    "--max-seq-length",
    "128",
    "--per-device-train-batch-size",
    "2",
    "--gradient-accumulation-steps",
    "1",
    "--learning-rate",
    "3e-3",
    "--validation-split-percentage",
    "10",
    "--seed",
    "3",
    "--logging-steps",
    "1",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const rows = readLossCsv(`${out}/loss.csv`);
  assert(Number(rows.at(-1)!.eval_loss) < Number(rows[0].eval_loss), "SFT held-out loss did not drop");
  assert(Deno.statSync(`${out}/tokenizer.model`).isFile, "the LoRA's tokenizer travels on");
  // merge(base, pt, sft) runs the trained model: its mean response loss on the same held-out records matches
  const merged = await mergeTo(s, [pt, out], `${s.dir}/sft-merged`);
  // the SFT prompt travels as HF does it (tokenizer_config.json chat_template) into the GGUF, where chat/serve/web
  // recognise it; a pre-training adapter records none
  assertEquals(
    JSON.parse(Deno.readTextFileSync(`${out}/tokenizer_config.json`)).chat_template,
    ALPACA_SFT_CHAT_TEMPLATE,
  );
  assertEquals(JSON.parse(Deno.readTextFileSync(`${pt}/tokenizer_config.json`)).chat_template, undefined);
  const chatTemplateOf = (path: string) =>
    ggufChatTemplate(readGguf(new BytesSource(Deno.readFileSync(path))).metadata as Map<string, unknown>);
  assertEquals(chatTemplateOf(merged), ALPACA_SFT_CHAT_TEMPLATE);
  assertEquals(templateForModel(chatTemplateOf(merged))?.name, "alpaca-sft");
  assertEquals(chatTemplateOf(await mergeTo(s, [pt], `${s.dir}/pt-merged`)), undefined);
  const { buildSftDataset, readAlpacaRecords, splitTrainValidation, validationFraction, IGNORE_INDEX } = await import(
    "../../src/train/data.ts"
  );
  const recs = readAlpacaRecords(`${s.dir}/alpaca.json`, Deno.readFileSync(`${s.dir}/alpaca.json`));
  const ds = buildSftDataset(recs, s.tok, 128);
  const split = splitTrainValidation(ds.examples.length, validationFraction(10), 3);
  let sum = 0, n = 0;
  for (const i of split.validation) {
    const e = ds.examples[i];
    const batch = { batch: 1, seqLen: e.inputIds.length, tokens: e.inputIds, labels: e.labels };
    const k = e.labels.slice(1).filter((l) => l !== IGNORE_INDEX).length;
    sum += evalMergedGguf(merged, batch) * k;
    n += k;
  }
  assertAllClose([sum / n], [Number(rows.at(-1)!.eval_loss)], { rtol: 1e-6, msg: "merged SFT model vs trainer" });
  // --validation-file (the seed's): held-out records from their own file; --data as a folder of .json files
  Deno.mkdirSync(`${s.dir}/sft-data`);
  Deno.writeTextFileSync(`${s.dir}/sft-data/a.json`, JSON.stringify(records.slice(0, 30)));
  Deno.writeTextFileSync(`${s.dir}/sft-data/b.jsonl`, records.slice(30).map((x) => JSON.stringify(x)).join("\n"));
  Deno.writeTextFileSync(`${s.dir}/val.json`, JSON.stringify(records.slice(0, 5)));
  const v = await runTask("sft", [
    "--base-model",
    s.gguf,
    "--data",
    `${s.dir}/sft-data`,
    "--validation-file",
    `${s.dir}/val.json`,
    "--output-dir",
    `${s.dir}/sft-v`,
    "--max-steps",
    "1",
    "--gradient-accumulation-steps",
    "1",
  ]);
  assertEquals(v.code, 0, v.stderr);
  assertMatch(v.stderr, /data: 2 file\(s\), 60 records, \d+ tokens; 60 train, 5 held out/);
});

Deno.test({
  name: "cleanup of the tiny setup",
  fn() {
    if (setup) Deno.removeSync(setup.dir, { recursive: true });
  },
});
