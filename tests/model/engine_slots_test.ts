/**
 * The engine's multi-sequence API (slots, evalSlot, evalBatch, evalHidden) against its single-sequence path.
 * Oracle: generate() on a one-slot engine, prompt by prompt (greedy ids must be identical per slot), and the TS
 * reference (llama.ts) for the hidden states; sequences are started at different steps so rows of one batch sit
 * at different positions, and one slot is reused after its sequence ends.
 */
import { type BatchRow, createEngine } from "../../src/model/engine.ts";
import { generate } from "../../src/model/generate.ts";
import { LlamaReference, loadWeightsF32 } from "../../src/model/llama.ts";
import { TensorTable } from "../../src/model/weights.ts";
import { configFromGgufMetadata } from "../../src/model/config.ts";
import { argmax } from "../../src/sampling/sampler.ts";
import { assertAllClose, assertEquals, assertRejects } from "../_assert.ts";
import { openModel, tinyConfig, writeTinyModel } from "./_tiny.ts";

const PROMPTS = [[1, 20, 77, 150, 3], [1, 299, 42], [1, 8, 9, 10, 11, 12, 13, 14, 15], [1, 5], [1, 100, 200]];
const STEPS = 24;
/** Step at which each prompt joins the batch (a prompt waits until a slot is free). */
const JOIN = [0, 0, 3, 5, 7];

const greedy = { sample: (l: Float32Array) => argmax(l) };

for (const dtype of ["Q4_0", "F32"] as const) {
  for (const threads of [1, 2]) {
    Deno.test(`engine evalBatch() on 3 slots gives each sequence generate()'s greedy ids (${dtype}, ${threads} thread(s))`, async () => {
      const path = await writeTinyModel(tinyConfig(2), { dtype, seed: 11 });
      const model = openModel(path);
      try {
        const single = await createEngine(model, { threads, contextSize: 64 });
        const want: number[][] = [];
        try {
          for (const p of PROMPTS) {
            const e = {
              contextSize: 64,
              tokenizer: { eosId: -1 },
              eval: (t: number[], at: number) => single.eval(t, at),
            };
            const r = await generate(e, greedy, p, { maxTokens: STEPS });
            want.push(r.ids);
          }
        } finally {
          single.close();
        }
        const engine = await createEngine(model, { threads, contextSize: 64, slots: 3, maxBatch: 4 });
        try {
          assertEquals(engine.slots, 3);
          const got: number[][] = PROMPTS.map(() => []);
          // slot -> [prompt index, next position, last logits]; the first prompts are read with evalSlot, later
          // ones join a decode step: their prompt rows go first, their last prompt token among the logits rows
          const active = new Map<number, { i: number; pos: number; logits: Float32Array }>();
          let next = 0;
          for (let step = 0; next < PROMPTS.length || active.size > 0; step++) {
            const joining: { slot: number; i: number }[] = [];
            for (let slot = 0; slot < 3 && next < PROMPTS.length && JOIN[next] <= step; slot++) {
              if (active.has(slot)) continue;
              const p = PROMPTS[next];
              if (step === 0) active.set(slot, { i: next++, pos: p.length, logits: await engine.evalSlot(slot, p, 0) });
              else joining.push({ slot, i: next++ });
            }
            const body: BatchRow[] = [], tail: BatchRow[] = [];
            for (const { slot, i } of joining) {
              const p = PROMPTS[i];
              p.forEach((token, pos) => (pos < p.length - 1 ? body : tail).push({ slot, token, pos }));
            }
            const tailOwner: number[] = joining.map((j) => j.slot);
            for (const [slot, s] of active) {
              const id = argmax(s.logits);
              got[s.i].push(id);
              if (got[s.i].length === STEPS) active.delete(slot);
              else tail.push({ slot, token: id, pos: s.pos++ }), tailOwner.push(slot);
            }
            if (body.length + tail.length === 0) continue;
            const out = await engine.evalBatch([...body, ...tail], tail.length);
            assertEquals(out.length, tail.length);
            for (const { slot, i } of joining) {
              active.set(slot, { i, pos: PROMPTS[i].length, logits: new Float32Array() });
            }
            tailOwner.forEach((slot, k) => active.get(slot)!.logits = out[k]);
          }
          for (let i = 0; i < PROMPTS.length; i++) assertEquals(got[i], want[i], `prompt ${i}`);
        } finally {
          engine.close();
        }
      } finally {
        model.source.close();
        Deno.removeSync(path);
      }
    });
  }
}

Deno.test("engine slot 0 keeps eval()'s behaviour: eval and evalSlot(0) give the same logits", async () => {
  const path = await writeTinyModel(tinyConfig(4), { dtype: "Q8_0", seed: 3 });
  const model = openModel(path);
  try {
    const one = await createEngine(model, { threads: 1, contextSize: 32 });
    const many = await createEngine(model, { threads: 1, contextSize: 32, slots: 4 });
    try {
      const a = await one.eval(PROMPTS[0], 0);
      await many.evalSlot(2, PROMPTS[1], 0); // another region must not disturb slot 0
      const b = await many.eval(PROMPTS[0], 0);
      const c = await many.evalSlot(3, PROMPTS[0], 0);
      assertEquals(Array.from(b), Array.from(a));
      assertEquals(Array.from(c), Array.from(a));
    } finally {
      one.close();
      many.close();
    }
  } finally {
    model.source.close();
    Deno.removeSync(path);
  }
});

Deno.test("engine evalHidden() returns the final-normed hidden states of the reference", async () => {
  const config = tinyConfig(2);
  const path = await writeTinyModel(config, { dtype: "F32", seed: 5 });
  const model = openModel(path);
  try {
    const cfg = configFromGgufMetadata(model.metadata);
    const ref = new LlamaReference(cfg, loadWeightsF32(new TensorTable(model, cfg)), 32, { f16Cache: true });
    const want = PROMPTS[2].map((t, i) => {
      ref.forward(t, i);
      return ref.hidden;
    });
    for (const useReference of [false, true]) {
      const engine = await createEngine(model, { threads: 1, contextSize: 32, slots: 2, maxBatch: 4, useReference });
      try {
        const got = await engine.evalHidden(1, PROMPTS[2], 0);
        assertEquals(got.length, PROMPTS[2].length);
        got.forEach((row, i) => assertAllClose(row, want[i], { atol: 2e-3, rtol: 2e-3 }));
      } finally {
        engine.close();
      }
    }
  } finally {
    model.source.close();
    Deno.removeSync(path);
  }
});

Deno.test("engine evalBatch() rejects a slot going backwards, a slot out of range and a position past the context", async () => {
  const path = await writeTinyModel(tinyConfig(2), { dtype: "F32", seed: 1 });
  const model = openModel(path);
  try {
    const engine = await createEngine(model, { threads: 1, contextSize: 16, slots: 2 });
    try {
      await assertRejects(() => engine.evalBatch([{ slot: 0, token: 1, pos: 1 }, { slot: 0, token: 1, pos: 1 }]));
      await assertRejects(() => engine.evalBatch([{ slot: 0, token: 1, pos: 0 }], 2));
      await assertRejects(() => engine.evalBatch([{ slot: 2, token: 1, pos: 0 }]));
      await assertRejects(() => engine.evalBatch([{ slot: 1, token: 1, pos: 16 }]));
      await assertRejects(() => engine.evalSlot(-1, [1], 0));
      await assertRejects(() => engine.evalBatch([]));
      // still usable
      assertEquals((await engine.evalBatch([{ slot: 1, token: 1, pos: 0 }])).length, 1);
    } finally {
      engine.close();
    }
  } finally {
    model.source.close();
    Deno.removeSync(path);
  }
});
