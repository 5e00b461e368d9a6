/**
 * The one table of LLaMA tensor names: GGUF (llama.cpp), Hugging Face (transformers LlamaForCausalLM), and Meta
 * (`consolidated.*.pth`). Every other module speaks in `TensorKind` + layer index.
 * see: llama.cpp gguf-py/gguf/tensor_mapping.py, transformers modeling_llama.py, Meta llama/model.py
 */

import type { LlamaConfig } from "./config.ts";
import type { Llama2cField } from "../formats/llama2c.ts";

/** What a tensor is, independent of any naming scheme. */
export type TensorKind =
  | "tok_embd"
  | "attn_norm"
  | "attn_q"
  | "attn_k"
  | "attn_v"
  | "attn_output"
  | "ffn_norm"
  | "ffn_gate"
  | "ffn_down"
  | "ffn_up"
  | "output_norm"
  | "output";

/** A naming scheme. */
export type NameScheme = "gguf" | "hf" | "meta";

/** Kinds that exist once per layer. */
export const LAYER_KINDS: readonly TensorKind[] = [
  "attn_norm",
  "attn_q",
  "attn_k",
  "attn_v",
  "attn_output",
  "ffn_norm",
  "ffn_gate",
  "ffn_down",
  "ffn_up",
];

/** Kinds that exist once per model. */
export const GLOBAL_KINDS: readonly TensorKind[] = ["tok_embd", "output_norm", "output"];

const NAMES: Record<TensorKind, Record<NameScheme, string>> = {
  tok_embd: { gguf: "token_embd.weight", hf: "model.embed_tokens.weight", meta: "tok_embeddings.weight" },
  attn_norm: {
    gguf: "blk.{L}.attn_norm.weight",
    hf: "model.layers.{L}.input_layernorm.weight",
    meta: "layers.{L}.attention_norm.weight",
  },
  attn_q: {
    gguf: "blk.{L}.attn_q.weight",
    hf: "model.layers.{L}.self_attn.q_proj.weight",
    meta: "layers.{L}.attention.wq.weight",
  },
  attn_k: {
    gguf: "blk.{L}.attn_k.weight",
    hf: "model.layers.{L}.self_attn.k_proj.weight",
    meta: "layers.{L}.attention.wk.weight",
  },
  attn_v: {
    gguf: "blk.{L}.attn_v.weight",
    hf: "model.layers.{L}.self_attn.v_proj.weight",
    meta: "layers.{L}.attention.wv.weight",
  },
  attn_output: {
    gguf: "blk.{L}.attn_output.weight",
    hf: "model.layers.{L}.self_attn.o_proj.weight",
    meta: "layers.{L}.attention.wo.weight",
  },
  ffn_norm: {
    gguf: "blk.{L}.ffn_norm.weight",
    hf: "model.layers.{L}.post_attention_layernorm.weight",
    meta: "layers.{L}.ffn_norm.weight",
  },
  ffn_gate: {
    gguf: "blk.{L}.ffn_gate.weight",
    hf: "model.layers.{L}.mlp.gate_proj.weight",
    meta: "layers.{L}.feed_forward.w1.weight",
  },
  ffn_down: {
    gguf: "blk.{L}.ffn_down.weight",
    hf: "model.layers.{L}.mlp.down_proj.weight",
    meta: "layers.{L}.feed_forward.w2.weight",
  },
  ffn_up: {
    gguf: "blk.{L}.ffn_up.weight",
    hf: "model.layers.{L}.mlp.up_proj.weight",
    meta: "layers.{L}.feed_forward.w3.weight",
  },
  output_norm: { gguf: "output_norm.weight", hf: "model.norm.weight", meta: "norm.weight" },
  output: { gguf: "output.weight", hf: "lm_head.weight", meta: "output.weight" },
};

/** The PEFT/HF module name of a kind (`q_proj`, `embed_tokens`, `lm_head`, …), as LoRA `target_modules` uses. */
export const HF_MODULE: Record<TensorKind, string> = {
  tok_embd: "embed_tokens",
  attn_norm: "input_layernorm",
  attn_q: "q_proj",
  attn_k: "k_proj",
  attn_v: "v_proj",
  attn_output: "o_proj",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "gate_proj",
  ffn_down: "down_proj",
  ffn_up: "up_proj",
  output_norm: "norm",
  output: "lm_head",
};

/** The tensor name of `kind` (at `layer` for per-layer kinds) in `scheme`. */
export function tensorName(scheme: NameScheme, kind: TensorKind, layer?: number): string {
  const pattern = NAMES[kind][scheme];
  if (pattern.includes("{L}")) {
    if (layer === undefined || !Number.isInteger(layer) || layer < 0) {
      throw new RangeError(`Cannot name "${kind}": a layer index is required, got ${layer}`);
    }
    return pattern.replace("{L}", String(layer));
  }
  return pattern;
}

/** The kind of each llama2.c checkpoint field (run.c TransformerWeights), as convert-llama2c-to-ggml maps them. */
const LLAMA2C_KINDS: Record<Llama2cField, TensorKind> = {
  token_embedding_table: "tok_embd",
  rms_att_weight: "attn_norm",
  wq: "attn_q",
  wk: "attn_k",
  wv: "attn_v",
  wo: "attn_output",
  rms_ffn_weight: "ffn_norm",
  w1: "ffn_gate",
  w2: "ffn_down",
  w3: "ffn_up",
  rms_final_weight: "output_norm",
  wcls: "output",
};

/** The tensor kind of a llama2.c checkpoint field. */
export function llama2cKind(field: Llama2cField): TensorKind {
  return LLAMA2C_KINDS[field];
}

/** A parsed tensor name. */
export interface ParsedName {
  kind: TensorKind;
  layer?: number;
}

const PARSERS: Record<NameScheme, { re: RegExp; kind: TensorKind }[]> = {
  gguf: [],
  hf: [],
  meta: [],
};
for (const kind of Object.keys(NAMES) as TensorKind[]) {
  for (const scheme of ["gguf", "hf", "meta"] as NameScheme[]) {
    const src = "^" + NAMES[kind][scheme].replace(/\./g, "\\.").replace("{L}", "(\\d+)") + "$";
    PARSERS[scheme].push({ re: new RegExp(src), kind });
  }
}

/** Parses a tensor name in `scheme`; undefined for names outside the table (e.g. Meta's `rope.freqs`). */
export function parseTensorName(scheme: NameScheme, name: string): ParsedName | undefined {
  for (const { re, kind } of PARSERS[scheme]) {
    const m = re.exec(name);
    if (m) return m[1] !== undefined ? { kind, layer: Number(m[1]) } : { kind };
  }
  return undefined;
}

/** Guesses the scheme of a set of tensor names (undefined when none matches). */
export function detectNameScheme(names: Iterable<string>): NameScheme | undefined {
  for (const name of names) {
    for (const scheme of ["gguf", "hf", "meta"] as NameScheme[]) {
      if (parseTensorName(scheme, name)) return scheme;
    }
  }
  return undefined;
}

/** Converts a tensor name between schemes; undefined when the name is not in the table. */
export function convertTensorName(name: string, from: NameScheme, to: NameScheme): string | undefined {
  const p = parseTensorName(from, name);
  return p ? tensorName(to, p.kind, p.layer) : undefined;
}

/**
 * True for kinds whose rows HF stores permuted for rotate-half RoPE (q and k): converting HF → Meta/GGUF
 * must un-permute them, Meta/GGUF → HF must permute. Meta and GGUF share the interleaved layout.
 */
export function needsRopePermute(kind: TensorKind): boolean {
  return kind === "attn_q" || kind === "attn_k";
}

/**
 * The expected row-major shape of a tensor kind: matrices are [out, in] so `y = W·x`. `vocabSize` overrides the
 * config's for the embedding and output rows (a base model before its vocabulary is resized).
 */
export function expectedShape(c: LlamaConfig, kind: TensorKind, vocabSize: number = c.vocabSize): number[] {
  const kvDim = c.nKvHeads * c.headSize;
  switch (kind) {
    case "tok_embd":
    case "output":
      return [vocabSize, c.dim];
    case "attn_norm":
    case "ffn_norm":
    case "output_norm":
      return [c.dim];
    case "attn_q":
    case "attn_output":
      return [c.dim, c.dim];
    case "attn_k":
    case "attn_v":
      return [kvDim, c.dim];
    case "ffn_gate":
    case "ffn_up":
      return [c.hiddenDim, c.dim];
    case "ffn_down":
      return [c.dim, c.hiddenDim];
  }
}
