/**
 * Independent expectations for merge tests: the merged weights recomputed naively here (f64 matmul, the row
 * permutation written out from its definition), and small readers of every output type.
 */
import { BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { readPytorchCheckpoint, readPytorchTensor } from "../../src/formats/pytorch.ts";
import { readSafetensors } from "../../src/formats/safetensors.ts";
import type { TensorKind } from "../../src/model/tensor_names.ts";
import {
  tinyConfig,
  type TinyLoraSpec,
  tinyLoraTensors,
  type TinyModelSpec,
  tinyShape,
  tinyTensor,
} from "../_tiny_model.ts";
import type { DType } from "../../src/core/dtypes.ts";

/** Rounds to fp16 / bf16 (or leaves f32) — what storing at `dtype` does. */
export function roundAs(dtype: DType, x: Float32Array): Float32Array {
  if (dtype === "F16") return Float32Array.from(Float16Array.from(x));
  if (dtype === "BF16") {
    const u = new Uint32Array(Float32Array.from(x).buffer);
    for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 0) & 0xffff0000;
    return new Float32Array(u.buffer);
  }
  return Float32Array.from(x);
}

/** All values of a generated base tensor (Meta layout), as stored at `dtype`. */
export function baseValues(
  spec: TinyModelSpec,
  kind: TensorKind,
  layer: number | undefined,
  dtype: DType,
): Float32Array {
  const t = tinyTensor(spec, kind, layer, "meta");
  return roundAs(dtype, t.readRows(0, t.shape.length === 1 ? 1 : t.shape[0]));
}

/** meta row (h·D + 2j + p) = hf row (h·D + p·D/2 + j): returns the HF-layout copy of Meta-layout rows. */
export function metaToHf(w: Float32Array, rows: number, cols: number, headSize: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < rows / headSize; h++) {
    for (let j = 0; j < headSize / 2; j++) {
      for (let p = 0; p < 2; p++) {
        const meta = h * headSize + 2 * j + p, hf = h * headSize + p * (headSize / 2) + j;
        out.set(w.subarray(meta * cols, (meta + 1) * cols), hf * cols);
      }
    }
  }
  return out;
}

/** Inverse of metaToHf. */
export function hfToMeta(w: Float32Array, rows: number, cols: number, headSize: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < rows / headSize; h++) {
    for (let j = 0; j < headSize / 2; j++) {
      for (let p = 0; p < 2; p++) {
        const meta = h * headSize + 2 * j + p, hf = h * headSize + p * (headSize / 2) + j;
        out.set(w.subarray(hf * cols, (hf + 1) * cols), meta * cols);
      }
    }
  }
  return out;
}

const HF_MOD: Partial<Record<TensorKind, string>> = {
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_gate: "mlp.gate_proj",
  ffn_down: "mlp.down_proj",
  ffn_up: "mlp.up_proj",
};

/**
 * The merged tensor in Meta layout, recomputed from scratch: base (as stored) in HF layout, + Σ scaling·B·A per
 * LoRA in f64 (transposed with fan_in_fan_out), held at `holdDtype` after each LoRA; modules_to_save replace.
 */
export function expectedMerged(
  spec: TinyModelSpec,
  baseDtype: DType,
  loras: TinyLoraSpec[],
  kind: TensorKind,
  layer?: number,
): Float32Array {
  const headSize = spec.dim / spec.nHeads;
  const hold: DType = baseDtype === "F32" ? "F32" : "F16"; // the seed holds every base in fp16
  let w = baseValues(spec, kind, layer, baseDtype);
  const shape = tinyShape(tinyConfig(spec), kind);
  const [rows, cols] = shape.length === 1 ? [1, shape[0]] : shape;
  const rope = kind === "attn_q" || kind === "attn_k";
  if (rope) w = metaToHf(w, rows, cols, headSize);
  for (const lora of loras) {
    const tensors = tinyLoraTensors(spec, lora);
    const ldt = lora.dtype ?? "F16";
    const get = (name: string) => {
      const t = tensors.find((x) => x.name === name);
      return t ? roundAs(ldt, t.t.readRows(0, t.t.shape[0])) : undefined;
    };
    if (kind === "tok_embd" || kind === "output") {
      const rep = get(
        kind === "tok_embd" ? "base_model.model.model.embed_tokens.weight" : "base_model.model.lm_head.weight",
      );
      if (rep) w = rep;
      continue;
    }
    const mod = HF_MOD[kind];
    if (!mod || layer === undefined) continue;
    const prefix = `base_model.model.model.layers.${layer}.${mod}`;
    const a = get(`${prefix}.lora_A.weight`), b = get(`${prefix}.lora_B.weight`);
    if (!a || !b) continue;
    const r = lora.r, s = lora.alpha / lora.r, fan = lora.fanInFanOut ?? false;
    const out = new Float32Array(w.length);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        let acc = 0;
        // (B·A)[i][j] = Σ_k B[i][k]·A[k][j]; with fan_in_fan_out W gets (B·A)ᵀ: B (cols, r), A (r, rows)
        for (let k = 0; k < r; k++) acc += fan ? b[j * r + k] * a[k * rows + i] : b[i * r + k] * a[k * cols + j];
        out[i * cols + j] = w[i * cols + j] + acc * s;
      }
    }
    w = roundAs(hold, out);
  }
  return rope ? hfToMeta(w, rows, cols, headSize) : w;
}

/** Decodes F32/F16/BF16 bytes. */
export function decode(dtype: DType, bytes: Uint8Array): Float32Array {
  const b = bytes.slice();
  if (dtype === "F32") return new Float32Array(b.buffer);
  if (dtype === "F16") return Float32Array.from(new Float16Array(b.buffer));
  if (dtype === "BF16") {
    const h = new Uint16Array(b.buffer);
    return new Float32Array(Uint32Array.from(h, (v) => v << 16).buffer);
  }
  throw new Error(`decode: ${dtype}`);
}

/** name → {dtype, shape, bytes} of every tensor in the output folder / file. */
export function readOutputTensors(path: string): Map<string, { dtype: DType; shape: number[]; bytes: Uint8Array }> {
  const out = new Map<string, { dtype: DType; shape: number[]; bytes: Uint8Array }>();
  const files = Deno.statSync(path).isFile
    ? [path]
    : [...Deno.readDirSync(path)].map((e) => `${path}/${e.name}`).sort();
  for (const f of files) {
    if (f.endsWith(".gguf")) {
      const src = new BytesSource(Deno.readFileSync(f));
      for (const t of readGguf(src).tensors) {
        out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes: src.read(t.byteOffset, t.nBytes) });
      }
    } else if (f.endsWith(".safetensors")) {
      const src = new BytesSource(Deno.readFileSync(f));
      for (const t of readSafetensors(src).tensors) {
        out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes: src.read(t.byteOffset, t.nBytes) });
      }
    } else if (f.endsWith(".pth")) {
      const src = new BytesSource(Deno.readFileSync(f));
      const shard = f.match(/consolidated\.(\d+)\.pth$/)![1];
      for (const t of readPytorchCheckpoint(src).tensors) {
        out.set(`${shard}/${t.name}`, { dtype: t.dtype, shape: t.shape, bytes: readPytorchTensor(src, t) });
      }
    }
  }
  return out;
}
