/**
 * A llama2.c legacy checkpoint as a GGUF write spec (in memory or streamed), optionally with matrices quantized,
 * so babyllama-style models run through the same engine as GGUF files. llama2.c q/k rows are already in GGUF's
 * interleaved RoPE order: no permutation.
 * see: formats/llama2c.ts (the reader), ../shared/data/models/PROVENANCE.md "llama2.c legacy checkpoint"
 */
import type { ByteSource } from "../core/byte_source.ts";
import { nBytesOf } from "../core/dtypes.ts";
import type { GgufKv, GgufWriteSpec } from "../formats/gguf_writer.ts";
import { type Llama2cConfig, readLlama2cLayout } from "../formats/llama2c.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { llama2cKind, tensorName } from "./tensor_names.ts";
import { quantizeRowQ4_0Ref } from "../quant/q4_0.ts";
import { quantizeRowQ8_0Ref } from "../quant/q8_0.ts";
import { configToGgufKvs, type LlamaConfig, validateConfig } from "./config.ts";
import { dequantizeToF32 } from "./weights.ts";

/** A llama2.c checkpoint with its tensors under their GGUF names (as llama.cpp's convert-llama2c-to-ggml). */
export interface Llama2cFile {
  config: Llama2cConfig;
  /** token_embd, blk.N.* per layer, output_norm, and output (only when untied); F32, absolute offsets. */
  tensors: TensorInfo[];
}

/** Reads a llama2.c checkpoint layout (formats/llama2c.ts) and names its tensors as GGUF does. */
export function readLlama2c(source: ByteSource): Llama2cFile {
  const { config, tensors } = readLlama2cLayout(source);
  return {
    config,
    tensors: tensors.map(({ field, layer, ...t }) => ({ name: tensorName("gguf", llama2cKind(field), layer), ...t })),
  };
}

/** Options of ggufSpecFromLlama2c(). */
export interface Llama2cToGgufOptions {
  /** Type of the 2-D matrices (norms stay F32). Default "F32". */
  dtype?: "F32" | "F16" | "Q8_0" | "Q4_0";
  /** tokenizer.ggml.* KVs to include (from the model's tokenizer). */
  tokenizer?: GgufKv[];
  name?: string;
}

/** Reads a llama2.c checkpoint header from `source` and returns its config and a GGUF spec over its tensors. */
export function ggufSpecFromLlama2c(
  source: ByteSource,
  options: Llama2cToGgufOptions = {},
): { config: LlamaConfig; spec: GgufWriteSpec } {
  const l2c = readLlama2c(source);
  const h = l2c.config;
  const config = validateConfig({
    dim: h.dim,
    hiddenDim: h.hiddenDim,
    nLayers: h.nLayers,
    nHeads: h.nHeads,
    nKvHeads: h.nKvHeads,
    headSize: h.headSize,
    vocabSize: h.vocabSize,
    contextLength: h.seqLen,
    normEps: 1e-5, // run.c's constant
    ropeTheta: 10000,
  });
  const dtype = options.dtype ?? "F32";
  const metadata: GgufKv[] = [
    ...configToGgufKvs(config, options.name ?? "llama2.c"),
    ...(options.tokenizer ?? []),
  ];
  const tensors = l2c.tensors.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const cols = t.shape[t.shape.length - 1];
    const target = t.shape.length === 2 && (dtype === "F32" || dtype === "F16" || cols % 32 === 0) ? dtype : "F32";
    return {
      name: t.name,
      dtype: target,
      shape: t.shape,
      data: () => {
        const bytes = source.read(t.byteOffset, t.nBytes);
        if (target === "F32") return bytes;
        const f = dequantizeToF32("F32", bytes, n);
        if (target === "F16") return new Uint8Array(new Float16Array(f).buffer);
        const out = new Uint8Array(nBytesOf(target, n));
        if (target === "Q8_0") quantizeRowQ8_0Ref(f, out);
        else quantizeRowQ4_0Ref(f, out);
        return out;
      },
    };
  });
  return { config, spec: { metadata, tensors } };
}
