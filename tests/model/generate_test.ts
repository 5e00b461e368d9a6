/**
 * Tests for generate(), the completion loop, on a scripted fake engine (pure; no permissions). Oracle: the loop's
 * contract written out by hand — positions passed to eval, stop reasons, the stop token never emitted.
 */
import { generate } from "../../src/model/generate.ts";
import { Sampler } from "../../src/sampling/sampler.ts";
import { assertEquals, assertRejects } from "../_assert.ts";
import { UserError } from "../../src/core/errors.ts";

/** A fake engine whose logits always favour `next(lastToken)`; records every eval call. */
function fakeEngine(next: (last: number) => number, contextSize = 64, vocab = 10) {
  const calls: [number[], number][] = [];
  return {
    calls,
    contextSize,
    tokenizer: { eosId: 2 },
    eval(tokens: number[], startPos: number) {
      calls.push([tokens.slice(), startPos]);
      const l = new Float32Array(vocab);
      l[next(tokens[tokens.length - 1])] = 10;
      return Promise.resolve(l);
    },
  };
}

Deno.test(
  "generate() evaluates the prompt at 0, then each token at the next position",
  { permissions: "none" },
  async () => {
    const e = fakeEngine((t) => (t + 1) % 10 === 2 ? 3 : (t + 1) % 10);
    const seen: number[] = [];
    const r = await generate(e, new Sampler({ temperature: 0 }), [1, 5], {
      maxTokens: 3,
      onToken: (id) => seen.push(id),
    });
    assertEquals(r.ids, [6, 7, 8]);
    assertEquals(seen, [6, 7, 8]);
    assertEquals(r.stop, "length");
    // the last sampled token is not evaluated (nothing would read its logits)
    assertEquals(e.calls, [[[1, 5], 0], [[6], 2], [[7], 3]]);
  },
);

Deno.test("generate() stops at EOS without emitting it", { permissions: "none" }, async () => {
  const e = fakeEngine((t) => (t === 4 ? 2 : t + 1));
  const r = await generate(e, new Sampler({ temperature: 0 }), [1], { maxTokens: 50 });
  assertEquals(r.ids, []); // BOS → 2, which is EOS
  assertEquals(r.stop, "eos");
  const r2 = await generate(fakeEngine((t) => (t === 4 ? 2 : t === 1 ? 3 : t + 1)), new Sampler({ temperature: 0 }), [
    1,
  ], {
    maxTokens: 50,
  });
  assertEquals(r2.ids, [3, 4]);
  assertEquals(r2.stop, "eos");
});

Deno.test("generate() with stopAt [] ignores EOS and stops at the context end", { permissions: "none" }, async () => {
  const e = fakeEngine(() => 2, 6);
  const r = await generate(e, new Sampler({ temperature: 0, repeatPenalty: 1 }), [1, 1], {
    maxTokens: 100,
    stopAt: [],
  });
  assertEquals(r.stop, "context");
  assertEquals(e.calls[e.calls.length - 1][1], 5); // the last position of a 6-token context
});

Deno.test("generate() rejects a prompt that fills the context", { permissions: "none" }, async () => {
  const e = fakeEngine(() => 3, 4);
  await assertRejects(() => generate(e, new Sampler(), [1, 2, 3, 4], { maxTokens: 1 }), UserError, "context holds 4");
});
