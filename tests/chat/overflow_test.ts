/**
 * Context overflow on the real engine: a 2,000-token conversation on a 256-token context keeps working, keeps
 * the preamble, and after all the shifts the engine's KV cache holds exactly the conversation the session reports.
 * Oracle: a fresh engine evaluating the session's context tokens from position 0 in one batch must give the same
 * logits as the session's last evaluation (tolerance as the engine's own tests: 2e-3 abs + 2e-3 rel, for batching
 * and SIMD summation order).
 */
import { assert, assertAllClose, assertEquals } from "../_assert.ts";
import { ChatSession } from "../../src/chat/session.ts";
import { writeFileAtomic } from "../../src/io/atomic_file.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { randomModelSpec } from "../../fixtures/random_model.ts";
import { loadEngine } from "../../src/model/engine.ts";
import type { LlamaConfig } from "../../src/model/config.ts";

const CONFIG: LlamaConfig = {
  dim: 64,
  hiddenDim: 128,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headSize: 16,
  vocabSize: 512,
  contextLength: 2048,
  normEps: 1e-5,
  ropeTheta: 10000,
};

Deno.test("ChatSession on the engine: 2,000 tokens on -c 256 keep the preamble and a consistent KV cache", async () => {
  const path = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-overflow-", suffix: ".gguf" });
  try {
    await writeFileAtomic(path, (sink) => writeGguf(sink, randomModelSpec(CONFIG, { dtype: "F32", seed: 3 })));
    const engine = await loadEngine(path, { threads: 1, contextSize: 256 });
    const fresh = await loadEngine(path, { threads: 1, contextSize: 256 });
    try {
      let last: Float32Array = new Float32Array(0);
      const spy = {
        contextSize: engine.contextSize,
        tokenizer: engine.tokenizer,
        eval: async (tokens: number[], start: number) => (last = await engine.eval(tokens, start)),
      };
      const session = new ChatSession(spy, {
        maxNewTokens: 48,
        ignoreEos: true,
        sampler: { temperature: 0.8, seed: 7 },
      });
      const preamble = [...session.preambleTokens];
      assert(preamble.length > 80, "the Alpaca preamble is a large share of this context");
      let turns = 0;
      while (session.stats.promptTokens + session.stats.generatedTokens < 2000) {
        const r = await session.respond(`第${turns}个问题：北京 and some English words ${turns}`);
        assertEquals(r.stopReason, "length");
        assertEquals(r.nGenerated, 48);
        assertEquals([...session.contextTokens.slice(0, preamble.length)], preamble);
        assert(session.contextTokens.length <= 257);
        turns++;
      }
      assert(session.stats.contextShifts >= 5, `shifts: ${session.stats.contextShifts}`);
      const expected = await fresh.eval([...session.contextTokens.slice(0, session.evaluated)], 0);
      assertAllClose(last, expected, { atol: 2e-3, rtol: 2e-3 });
    } finally {
      engine.close();
      fresh.close();
    }
  } finally {
    await Deno.remove(path);
  }
});
