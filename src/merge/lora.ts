/**
 * PEFT LoRA adapters: `adapter_config.json` (r, lora_alpha, fan_in_fan_out, target_modules, modules_to_save) and
 * the tensors of `adapter_model.bin|.safetensors`, grouped per base tensor.
 * A LoRA on a linear W (out, in) stores A (r, in) and B (out, r); the merged weight is W + (lora_alpha / r)·B·A.
 * With fan_in_fan_out the seed's script adds (B·A)ᵀ instead (A (r, out), B (in, r)), and so do we.
 * see: peft tuners/lora (LoraConfig, get_delta_weight), the seed's merge_llama_with_chinese_lora.py
 */
import { FormatError, UnsupportedError } from "../core/errors.ts";
import { HF_MODULE, parseTensorName, type TensorKind } from "../model/tensor_names.ts";
import type { SourceTensor } from "./source_tensor.ts";

/** The adapter_config.json values that change the merged weights. */
export interface LoraConfig {
  r: number;
  loraAlpha: number;
  /** lora_alpha / r (or lora_alpha / √r when use_rslora). */
  scaling: number;
  fanInFanOut: boolean;
  /** Module names (q_proj, …) or one regex string, as PEFT allows. */
  targetModules: string[] | string;
  modulesToSave: string[];
  baseModelNameOrPath?: string;
}

/** Parses and validates an adapter_config.json object (`path` is for messages). */
export function parseAdapterConfig(json: unknown, path = "adapter_config.json"): LoraConfig {
  const bad = (msg: string) => new FormatError(`Cannot read LoRA config: ${msg}`, { format: "json", path });
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("expected a JSON object");
  const o = json as Record<string, unknown>;
  const peftType = o["peft_type"];
  if (peftType !== undefined && peftType !== "LORA") {
    throw new UnsupportedError(`Cannot merge adapter "${path}": peft_type is "${peftType}", only "LORA" is supported`);
  }
  const r = o["r"];
  if (typeof r !== "number" || !Number.isInteger(r) || r <= 0 || r > 65536) {
    throw bad(`"r" is ${JSON.stringify(r)}, expected a positive integer`);
  }
  const alpha = o["lora_alpha"] ?? 8;
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) {
    throw bad(`"lora_alpha" is ${JSON.stringify(alpha)}, expected a number`);
  }
  const fan = o["fan_in_fan_out"] ?? false;
  if (typeof fan !== "boolean") throw bad(`"fan_in_fan_out" is ${JSON.stringify(fan)}, expected true or false`);
  const tm = o["target_modules"];
  let targetModules: string[] | string;
  if (typeof tm === "string") targetModules = tm;
  else if (Array.isArray(tm) && tm.every((s) => typeof s === "string")) targetModules = tm as string[];
  else throw bad(`"target_modules" is ${JSON.stringify(tm)}, expected a list of module names`);
  const ms = o["modules_to_save"] ?? [];
  if (!Array.isArray(ms) || !ms.every((s) => typeof s === "string")) {
    throw bad(`"modules_to_save" is ${JSON.stringify(ms)}, expected a list of module names or null`);
  }
  for (const k of ["rank_pattern", "alpha_pattern"]) {
    const v = o[k];
    if (v && typeof v === "object" && Object.keys(v).length > 0) {
      throw new UnsupportedError(`Cannot merge adapter "${path}": "${k}" (per-module ranks) is not supported`);
    }
  }
  if (o["use_dora"] === true) throw new UnsupportedError(`Cannot merge adapter "${path}": DoRA is not supported`);
  const rslora = o["use_rslora"] === true;
  const base = o["base_model_name_or_path"];
  return {
    r,
    loraAlpha: alpha,
    scaling: rslora ? alpha / Math.sqrt(r) : alpha / r,
    fanInFanOut: fan,
    targetModules,
    modulesToSave: ms as string[],
    baseModelNameOrPath: typeof base === "string" ? base : undefined,
  };
}

/** What one adapter tensor name means. */
export type LoraKey =
  | { part: "A" | "B"; kind: TensorKind; layer?: number }
  | { part: "full"; kind: TensorKind; layer?: number }
  | { part: "ignore" };

/**
 * Parses a PEFT state-dict key: `base_model.model.<hf name minus .weight>.lora_A[.default].weight`,
 * `….modules_to_save[.default].weight` or the plain `base_model.model.<hf name>` that PEFT saves for
 * modules_to_save. Throws UnsupportedError for embedding LoRAs, DoRA and biases; FormatError for unknown names.
 */
export function parseLoraKey(key: string, path?: string): LoraKey {
  let k = key.startsWith("base_model.model.") ? key.slice("base_model.model.".length) : key;
  if (/\.lora_embedding_[AB]\b/.test(k) || /\.lora_magnitude_vector\b/.test(k)) {
    throw new UnsupportedError(`Cannot merge adapter tensor "${key}": embedding LoRA and DoRA are not supported`);
  }
  if (k.endsWith(".rotary_emb.inv_freq") || /\.original_module\./.test(k)) return { part: "ignore" };
  let part: "A" | "B" | "full" = "full";
  const m = /^(.*)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/.exec(k);
  if (m) {
    part = m[2] as "A" | "B";
    k = `${m[1]}.weight`;
  } else {
    k = k.replace(/\.modules_to_save(?:\.[A-Za-z0-9_-]+)?\.weight$/, ".weight");
  }
  const parsed = parseTensorName("hf", k);
  if (!parsed) {
    throw new FormatError(`Cannot read LoRA adapter: tensor "${key}" does not name a LLaMA weight`, {
      format: "peft",
      path,
    });
  }
  return { part, ...parsed };
}

/** A LoRA pair for one base tensor. */
export interface LoraPair {
  a: SourceTensor;
  b: SourceTensor;
}

/** A parsed adapter: its config, LoRA pairs and wholesale replacements, keyed by `tensorKey(kind, layer)`. */
export interface LoraAdapter {
  /** A label for messages: the folder path. */
  label: string;
  config: LoraConfig;
  pairs: Map<string, LoraPair>;
  /** modules_to_save tensors (embed_tokens, lm_head, …) that replace the base tensor wholesale. */
  replacements: Map<string, SourceTensor>;
  /** Size of the adapter's own tokenizer (tokenizer.model pieces), when the folder has one. */
  tokenizerSize?: number;
  /** Path of that tokenizer.model, when present. */
  tokenizerPath?: string;
}

/** The map key of a tensor kind at a layer. */
export function tensorKey(kind: TensorKind, layer?: number): string {
  return layer === undefined ? kind : `${kind}.${layer}`;
}

/** Groups adapter tensors into pairs and replacements; checks every lora_A has its lora_B and vice versa. */
export function loraAdapterFromTensors(
  label: string,
  config: LoraConfig,
  tensors: Iterable<SourceTensor>,
): LoraAdapter {
  const as = new Map<string, SourceTensor>();
  const bs = new Map<string, SourceTensor>();
  const replacements = new Map<string, SourceTensor>();
  for (const t of tensors) {
    const key = parseLoraKey(t.name, label);
    if (key.part === "ignore") continue;
    const tk = tensorKey(key.kind, key.layer);
    const into = key.part === "A" ? as : key.part === "B" ? bs : replacements;
    if (into.has(tk)) {
      throw new FormatError(`Cannot read LoRA adapter: two tensors for "${t.name}"`, { format: "peft", path: label });
    }
    into.set(tk, t);
  }
  const pairs = new Map<string, LoraPair>();
  for (const [tk, a] of as) {
    const b = bs.get(tk);
    if (!b) {
      throw new FormatError(`Cannot read LoRA adapter: "${a.name}" has no lora_B`, { format: "peft", path: label });
    }
    pairs.set(tk, { a, b });
  }
  for (const [tk, b] of bs) {
    if (!as.has(tk)) {
      throw new FormatError(`Cannot read LoRA adapter: "${b.name}" has no lora_A`, { format: "peft", path: label });
    }
  }
  return { label, config, pairs, replacements };
}

/** True when `kind` is named by the config's target_modules (a name list, or PEFT's full-match regex). */
export function isTargeted(config: LoraConfig, kind: TensorKind, hfName: string): boolean {
  const mod = HF_MODULE[kind];
  if (typeof config.targetModules === "string") {
    return new RegExp(`^(?:${config.targetModules})$`).test(hfName.replace(/\.weight$/, ""));
  }
  return config.targetModules.includes(mod);
}
