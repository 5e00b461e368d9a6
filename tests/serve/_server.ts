/**
 * Test helpers of the serve room: a tiny random model whose vocabulary also holds Chinese pieces (so replies are
 * Chinese), and the server on 127.0.0.1 on a free port, in this process.
 */
import { writeFileAtomic } from "../../src/io/atomic_file.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { ALPACA } from "../../src/chat/templates.ts";
import { type Engine, loadEngine } from "../../src/model/engine.ts";
import { randomModelSpec } from "../../fixtures/random_model.ts";
import { createServer, type ServeEngine, type ServeOptions, type Server } from "../../src/serve/mod.ts";
import { tinyConfig } from "../model/_tiny.ts";

/** Chinese pieces put into the random vocabulary (ids 259…). */
export const CHINESE_PIECES = [..."你好北京中国首都历史介绍一句话羊驼我们是的了在有人这大学生"];

/** Writes the tiny model (dim 64, 2 layers, vocab 400, Q4_0) to a temp file; returns its path. */
export async function writeServeModel(dtype: "Q4_0" | "F32" = "Q4_0"): Promise<string> {
  const spec = randomModelSpec(tinyConfig(2, { vocabSize: 400, contextLength: 512 }), { dtype, seed: 17 });
  const tokens = spec.metadata.find((kv) => kv.key === "tokenizer.ggml.tokens")!;
  const list = tokens.value as string[];
  CHINESE_PIECES.forEach((p, i) => list[259 + 2 * i] = p);
  const path = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-serve-", suffix: ".gguf" });
  await writeFileAtomic(path, (sink) => writeGguf(sink, spec));
  return path;
}

/** A server on 127.0.0.1 (free port) over a freshly loaded engine. */
export interface TestServer {
  url: string;
  engine: Engine;
  server: Server;
  close(): Promise<void>;
}

/** Options of startServer(). */
export interface TestServerOptions extends Partial<ServeOptions> {
  slots?: number;
  contextSize?: number;
  threads?: number;
  /**
   * A UI test's model: each forward takes at least this many ms, and EOS and the byte tokens are never chosen,
   * so a reply is still streaming when the test presses stop (the random model may otherwise end it within a few
   * tokens) and is made of whole pieces, Chinese among them (random bytes would be mostly invalid UTF-8).
   */
  slowNeverEnding?: number;
}

/** Starts the server; `slots` KV regions of `contextSize` each. */
export async function startServer(path: string, options: TestServerOptions = {}): Promise<TestServer> {
  const engine = await loadEngine(path, {
    threads: options.threads ?? 1,
    contextSize: options.contextSize ?? 256,
    slots: options.slots ?? 2,
  });
  const served = options.slowNeverEnding === undefined ? engine : slowNeverEnding(engine, options.slowNeverEnding);
  const page = await Deno.readTextFile(new URL("../../src/serve/static/index.html", import.meta.url));
  const server = createServer({ engine: served, modelId: "tiny", template: ALPACA, page, ...options });
  const addr = Promise.withResolvers<Deno.NetAddr>();
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => addr.resolve(a as Deno.NetAddr) },
    server.handler,
  );
  const { port } = await addr.promise;
  return {
    url: `http://127.0.0.1:${port}`,
    engine,
    server,
    async close() {
      server.close();
      await http.shutdown();
      engine.close();
    },
  };
}

function slowNeverEnding(engine: Engine, delayMs: number): ServeEngine {
  const eos = engine.tokenizer.eosId;
  const sleep = () => new Promise((r) => setTimeout(r, delayMs));
  const noEos = (l: Float32Array) => {
    l[eos] = -Infinity;
    for (let b = 0; b < 256; b++) l[engine.tokenizer.vocab.byteIds[b]] = -Infinity;
    return l;
  };
  return {
    tokenizer: engine.tokenizer,
    config: engine.config,
    contextSize: engine.contextSize,
    slots: engine.slots,
    evalBatch: async (rows, nLogits) => {
      await sleep();
      return (await engine.evalBatch(rows, nLogits)).map(noEos);
    },
    evalHidden: (slot, tokens, pos) => engine.evalHidden(slot, tokens, pos),
  };
}
