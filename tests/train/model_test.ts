/**
 * The training forward/backward against PyTorch 1.13 autograd (tests/train/_torch_train_oracle.py builds the same
 * model from the same weights): loss and every trainable gradient, full / stage 1 / LoRA, on a generated GQA LLaMA
 * (dim 64, 2 layers, 4/2 heads, vocab 300) and on babyllama105. Tolerance: 1e-4 relative per tensor
 * (max |ours − torch| / max |torch| over the tensor) and 1e-4 relative on the loss.
 */
import { scalarTrainKernels, type TrainKernels } from "../../src/kernels/train_kernels.ts";
import { createWasmTrainKernels } from "../../src/kernels/train_wasm.ts";
import { assert, assertEquals } from "../_assert.ts";
import { needsTestData } from "../_fixtures.ts";
import { needsTorch } from "../formats/_torch_oracle.ts";
import { IGNORE_INDEX, type TrainBatch, Trainer, type TrainOptions } from "../../src/train/mod.ts";
import type { TrainBase } from "../../src/train/mod.ts";
import { BABYLLAMA, babyllamaBase, gqaConfig, randomBase, randomBatch, relErr, roleOf, runOracle } from "./_oracle.ts";

const TOL = 1e-4;

function checkAgainstTorch(
  base: TrainBase,
  options: TrainOptions,
  batch: TrainBatch,
  kernels: TrainKernels = scalarTrainKernels,
) {
  const trainer = new Trainer(base, options, kernels);
  const perturbB = true;
  if (perturbB) {
    // B = 0 at init makes dA vanish: give B values so every LoRA gradient is exercised
    let s = 7;
    for (const p of trainer.params) {
      if (!p.name.endsWith(".lora_B.weight")) continue;
      for (let i = 0; i < p.data.length; i++) p.data[i] = ((s = (s * 48271) % 2147483647) / 2147483647 - 0.5) * 0.2;
    }
  }
  const loss = trainer.lossAndGrads(batch);
  const torch = runOracle(trainer, { batch }) as { loss: number; grads: Record<string, number[]> };
  const lossErr = Math.abs(loss - torch.loss) / Math.abs(torch.loss);
  assert(lossErr < TOL, `loss ${loss} vs torch ${torch.loss} (rel ${lossErr})`);
  const worst: string[] = [];
  let max = 0;
  for (const p of trainer.params) {
    const e = relErr(p.grad, torch.grads[roleOf(p.name)]);
    max = Math.max(max, e);
    if (!(e < TOL)) worst.push(`${p.name}: rel ${e}`);
  }
  assertEquals(worst, [], `gradients off:\n${worst.join("\n")}`);
  assertEquals(Object.keys(torch.grads).length, trainer.params.length);
  console.log(
    `${options.mode} (${kernels.name}): loss rel err ${lossErr.toExponential(2)}, max grad rel err ${
      max.toExponential(2)
    }`,
  );
  return { lossErr, maxGradErr: max };
}

const LORA_ALL: TrainOptions["lora"] = {
  r: 4,
  alpha: 16,
  dropout: 0,
  targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
};

Deno.test(
  "TrainModel full-mode loss and every gradient equal torch autograd on a GQA LLaMA",
  needsTorch(),
  async () => {
    const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 3 });
    checkAgainstTorch(base, { mode: "full", lr: 1e-3, maxSteps: 1 }, randomBatch(2, 24, 300, 11));
  },
);

Deno.test("TrainModel stage-1 gradients (embeddings + lm_head) equal torch on a GQA LLaMA", needsTorch(), async () => {
  const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 4 });
  checkAgainstTorch(base, { mode: "stage1", lr: 1e-3, maxSteps: 1 }, randomBatch(3, 17, 300, 12));
});

Deno.test("TrainModel LoRA gradients on all seven targets + modules_to_save equal torch", needsTorch(), async () => {
  const base = await randomBase(gqaConfig(), { dtype: "F16", seed: 5 });
  checkAgainstTorch(
    base,
    { mode: "lora", lora: LORA_ALL, modulesToSave: ["embed_tokens", "lm_head"], lr: 1e-3, maxSteps: 1 },
    randomBatch(2, 20, 300, 13),
  );
});

Deno.test(
  "TrainModel LoRA over a Q4_0 and a Q8_0 base equals torch on the dequantized weights",
  needsTorch(),
  async () => {
    for (const dtype of ["Q4_0", "Q8_0"] as const) {
      const base = await randomBase(gqaConfig({ hiddenDim: 160 }), { dtype, seed: 6 });
      checkAgainstTorch(
        base,
        { mode: "lora", lora: { ...LORA_ALL!, targets: ["q_proj", "v_proj", "down_proj"] }, lr: 1e-3, maxSteps: 1 },
        randomBatch(2, 16, 300, 14),
      );
    }
  },
);

Deno.test("TrainModel masked SFT loss equals CrossEntropyLoss(ignore_index=-100)", needsTorch(), async () => {
  const base = await randomBase(gqaConfig({ nKvHeads: 1 }), { dtype: "F32", seed: 8, tiedOutput: true });
  // prompt positions and right padding ignored, as the seed's SFT collator does
  const batch = randomBatch(3, 20, 300, 15, (b, t) => t < 5 + 3 * b || t > 16 - b);
  assert(Array.from(batch.labels).includes(IGNORE_INDEX));
  checkAgainstTorch(
    base,
    {
      mode: "lora",
      lora: { ...LORA_ALL!, targets: ["q_proj", "k_proj"] },
      modulesToSave: ["lm_head"],
      lr: 1,
      maxSteps: 1,
    },
    batch,
  );
});

Deno.test("TrainModel on babyllama105: full, stage-1 and LoRA gradients equal torch", {
  ignore: needsTorch().ignore || needsTestData(BABYLLAMA).ignore,
}, () => {
  const base = babyllamaBase();
  const batch = randomBatch(2, 64, base.config.vocabSize, 21);
  checkAgainstTorch(base, { mode: "full", lr: 1e-3, maxSteps: 1 }, batch);
  checkAgainstTorch(base, { mode: "stage1", lr: 1e-3, maxSteps: 1 }, batch);
  checkAgainstTorch(
    base,
    {
      mode: "lora",
      lora: { r: 8, alpha: 32, dropout: 0, targets: ["q_proj", "k_proj", "v_proj", "o_proj"] },
      modulesToSave: ["embed_tokens", "lm_head"],
      lr: 1e-3,
      maxSteps: 1,
    },
    batch,
  );
});

Deno.test(
  "TrainModel with the WASM train kernels: full, stage-1 and LoRA (Q4_0 base) gradients equal torch",
  needsTorch(),
  async () => {
    const wasm = await createWasmTrainKernels();
    const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 9 });
    const batch = randomBatch(2, 33, 300, 17, (_, t) => t % 7 === 3);
    checkAgainstTorch(base, { mode: "full", lr: 1e-3, maxSteps: 1 }, batch, wasm);
    checkAgainstTorch(base, { mode: "stage1", lr: 1e-3, maxSteps: 1 }, batch, wasm);
    const q4 = await randomBase(gqaConfig(), { dtype: "Q4_0", seed: 10 });
    checkAgainstTorch(
      q4,
      { mode: "lora", lora: LORA_ALL, modulesToSave: ["embed_tokens", "lm_head"], lr: 1e-3, maxSteps: 1 },
      batch,
      wasm,
    );
  },
);
