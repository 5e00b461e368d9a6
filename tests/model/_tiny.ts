/**
 * Test helpers: tiny random LLaMA models written through our GGUF writer to /tmp and opened back for the engine.
 */
import { FileSource } from "../../src/io/file_source.ts";
import { AtomicFileSink } from "../../src/io/atomic_file.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import type { LlamaConfig } from "../../src/model/config.ts";
import type { EngineModel } from "../../src/model/engine.ts";
import { type RandomModelOptions, randomModelSpec } from "../../fixtures/random_model.ts";

/** A tiny config: dim 64, 4 heads of 16, hidden 96, 2 layers, vocab 300. */
export function tinyConfig(nKvHeads: number, overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    dim: 64,
    hiddenDim: 96,
    nLayers: 2,
    nHeads: 4,
    nKvHeads,
    headSize: 16,
    vocabSize: 300,
    contextLength: 128,
    normEps: 1e-5,
    ropeTheta: 10000,
    ...overrides,
  };
}

/** Writes a random model to a fresh file under /tmp; returns its path. */
export async function writeTinyModel(config: LlamaConfig, options: RandomModelOptions): Promise<string> {
  const path = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-tiny-", suffix: ".gguf" });
  const sink = new AtomicFileSink(path);
  try {
    await writeGguf(sink, randomModelSpec(config, options));
    sink.commit();
  } catch (e) {
    sink.abort();
    throw e;
  }
  return path;
}

/** Opens a GGUF file as an EngineModel (close the source when done). */
export function openModel(path: string): EngineModel & { source: FileSource } {
  const source = new FileSource(path);
  const g = readGguf(source);
  return { metadata: g.metadata as Map<string, unknown>, tensors: g.tensors, source, path };
}
