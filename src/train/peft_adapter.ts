/**
 * A trained adapter as a PEFT folder, laid out like the seed's released LoRAs, which `merge` (and PEFT) read:
 * 1. `tokenizer.model`, `special_tokens_map.json`, `tokenizer_config.json` — the tokenizer the model was trained with;
 * 2. `adapter_model.safetensors` and/or `adapter_model.bin` (torch.save zip) — PEFT state-dict names:
 *    `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` (r, in), `….lora_B.weight` (out, r),
 *    modules_to_save as `base_model.model.model.embed_tokens.weight` / `base_model.model.lm_head.weight`;
 * 3. `adapter_config.json` last (PEFT's `to_json_file`: indent 2, sorted keys), so a folder with a config is whole.
 * Files go through sinks the caller hands in (the command writes each to a temp file and renames).
 * see: peft 0.3 LoraConfig / get_peft_model_state_dict / save_pretrained, the seed's run_clm_*_with_peft.py
 */
import type { ByteSink } from "../core/byte_source.ts";
import { checkedProduct } from "../core/dtypes.ts";
import { f32ArrayToF16Ref } from "../core/f16.ts";
import { writePytorchCheckpoint } from "../formats/pytorch_writer.ts";
import { encodeSafetensorsHeader, type SafetensorsWriterTensor } from "../formats/safetensors.ts";
import { HF_MODULE, parseTensorName } from "../model/tensor_names.ts";

/** The prefix PEFT's LoraModel gives every LlamaForCausalLM state-dict key. */
export const PEFT_KEY_PREFIX = "base_model.model.";

/** File names of a PEFT folder. */
export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_BIN_FILE = "adapter_model.bin";
export const ADAPTER_SAFETENSORS_FILE = "adapter_model.safetensors";

/** Most tensors an adapter may hold (7 targets × 2 factors × 100 layers + 2, with room to spare). */
const MAX_ADAPTER_TENSORS = 100_000;

/** One adapter tensor: a PEFT state-dict key, its shape and f32 values. */
export interface AdapterTensor {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

/** The LoRA settings that go into adapter_config.json. */
export interface AdapterSettings {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  /** HF module names (q_proj, …); empty for an embeddings-only (stage 1) adapter. */
  targetModules: readonly string[];
  /** embed_tokens and/or lm_head, or empty. */
  modulesToSave: readonly string[];
  baseModelNameOrPath: string;
  /** PEFT writes true once saved for inference; the seed's released LoRAs carry true. Default true. */
  inferenceMode?: boolean;
}

const MODULES = new Set(Object.values(HF_MODULE));

/**
 * adapter_config.json as PEFT 0.3 writes a LoraConfig (every field, keys sorted). Throws RangeError for values
 * PEFT would reject.
 */
export function peftAdapterConfig(s: AdapterSettings): Record<string, unknown> {
  if (!Number.isInteger(s.r) || s.r < 1 || s.r > 65536) throw new RangeError(`Cannot write adapter: r ${s.r}`);
  if (!Number.isFinite(s.loraAlpha)) throw new RangeError(`Cannot write adapter: lora_alpha ${s.loraAlpha}`);
  if (!(s.loraDropout >= 0 && s.loraDropout < 1)) {
    throw new RangeError(`Cannot write adapter: lora_dropout ${s.loraDropout} is not in [0, 1)`);
  }
  for (const m of s.targetModules) {
    if (!MODULES.has(m) || m === "embed_tokens" || m === "lm_head" || m.endsWith("norm")) {
      throw new RangeError(`Cannot write adapter: target module "${m}" is not a LLaMA linear layer`);
    }
  }
  for (const m of s.modulesToSave) {
    if (m !== "embed_tokens" && m !== "lm_head") {
      throw new RangeError(`Cannot write adapter: modules_to_save "${m}" (embed_tokens or lm_head only)`);
    }
  }
  const config: Record<string, unknown> = {
    base_model_name_or_path: s.baseModelNameOrPath,
    bias: "none",
    enable_lora: null,
    fan_in_fan_out: false,
    inference_mode: s.inferenceMode ?? true,
    lora_alpha: s.loraAlpha,
    lora_dropout: s.loraDropout,
    merge_weights: false,
    modules_to_save: s.modulesToSave.length ? [...s.modulesToSave] : null,
    peft_type: "LORA",
    r: s.r,
    target_modules: [...s.targetModules],
    task_type: "CAUSAL_LM",
  };
  return sortKeys(config);
}

function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

/**
 * Checks a PEFT state-dict key against the LlamaForCausalLM module tree and returns what it is; RangeError for
 * anything else (a typo here would make merge and PEFT skip the tensor silently).
 */
export function checkAdapterKey(name: string): { part: "lora_A" | "lora_B" | "full"; hfName: string } {
  if (!name.startsWith(PEFT_KEY_PREFIX)) {
    throw new RangeError(`Cannot write adapter tensor "${name}": PEFT keys start with "${PEFT_KEY_PREFIX}"`);
  }
  const rest = name.slice(PEFT_KEY_PREFIX.length);
  const m = /^(.*)\.(lora_A|lora_B)\.weight$/.exec(rest);
  const hfName = m ? `${m[1]}.weight` : rest;
  const parsed = parseTensorName("hf", hfName);
  if (!parsed) throw new RangeError(`Cannot write adapter tensor "${name}": not a LlamaForCausalLM weight`);
  const linear = parsed.kind !== "tok_embd" && parsed.kind !== "output" && !parsed.kind.endsWith("norm");
  if (m && !linear) throw new RangeError(`Cannot write adapter tensor "${name}": LoRA factors only on linear layers`);
  if (!m && linear) {
    throw new RangeError(`Cannot write adapter tensor "${name}": only embeddings/lm_head are saved whole`);
  }
  return { part: m ? m[2] as "lora_A" | "lora_B" : "full", hfName };
}

/** A file of the adapter folder (the shape `writeOutputFiles` in src/commands takes). */
export interface AdapterFile {
  path: string;
  nBytes: number;
  write(sink: ByteSink): void | Promise<void>;
}

/** What goes into the folder. */
export interface PeftAdapter {
  config: Record<string, unknown>;
  tensors: readonly AdapterTensor[];
  /** tokenizer.model bytes (SentencePiece ModelProto), when known. */
  tokenizerModel?: Uint8Array;
  /** Piece strings of BOS, EOS, UNK (special_tokens_map.json); defaults `<s>`, `</s>`, `<unk>`. */
  specialTokens?: { bos: string; eos: string; unk: string; pad?: string };
  /** A Jinja chat template for tokenizer_config.json's `chat_template` (as HF's save_pretrained writes it). */
  chatTemplate?: string;
}

/** Output choices. */
export interface PeftWriteOptions {
  /** Which weight files (default both). */
  formats?: readonly ("bin" | "safetensors")[];
  /** Storage dtype (default F32: merging gives exactly the model the trainer evaluated; F16 halves the size). */
  dtype?: "F32" | "F16";
}

function tensorBytes(t: AdapterTensor, dtype: "F32" | "F16"): Uint8Array {
  if (dtype === "F32") return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const h = f32ArrayToF16Ref(t.data);
  return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const bytesFile = (path: string, b: Uint8Array): AdapterFile => ({ path, nBytes: b.length, write: (s) => s.write(b) });

/**
 * The files of a PEFT adapter folder, in the order to write them (adapter_config.json last). Validates every key,
 * shape and length first; throws RangeError naming the tensor.
 *
 * @example
 * ```ts
 * import { BytesSink } from "../core/byte_source.ts";
 * import { peftAdapterConfig, peftAdapterFiles } from "./peft_adapter.ts";
 * const config = peftAdapterConfig({
 *   r: 1, loraAlpha: 2, loraDropout: 0, targetModules: ["q_proj"], modulesToSave: [], baseModelNameOrPath: "m",
 * });
 * const a = { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", shape: [1, 2], data: new Float32Array(2) };
 * const b = { ...a, name: a.name.replace("lora_A", "lora_B"), shape: [2, 1] };
 * for (const f of peftAdapterFiles({ config, tensors: [a, b] })) f.write(new BytesSink());
 * ```
 */
export function peftAdapterFiles(adapter: PeftAdapter, options: PeftWriteOptions = {}): AdapterFile[] {
  const dtype = options.dtype ?? "F32";
  const formats = options.formats ?? ["safetensors", "bin"];
  if (formats.length === 0) throw new RangeError("Cannot write adapter: no weight format chosen");
  if (adapter.tensors.length > MAX_ADAPTER_TENSORS) {
    throw new RangeError(`Cannot write adapter: ${adapter.tensors.length} tensors (limit ${MAX_ADAPTER_TENSORS})`);
  }
  const seen = new Set<string>();
  for (const t of adapter.tensors) {
    if (seen.has(t.name)) throw new RangeError(`Cannot write adapter: duplicate tensor "${t.name}"`);
    seen.add(t.name);
    const { part } = checkAdapterKey(t.name);
    const n = checkedProduct(t.shape);
    if (t.shape.length !== 2 || n === undefined || n !== t.data.length) {
      throw new RangeError(
        `Cannot write adapter tensor "${t.name}": shape [${t.shape}] does not hold ${t.data.length} values`,
      );
    }
    const r = adapter.config["r"];
    if (part === "lora_A" && t.shape[0] !== r) throw new RangeError(`Cannot write "${t.name}": lora_A rows ≠ r ${r}`);
    if (part === "lora_B" && t.shape[1] !== r) {
      throw new RangeError(`Cannot write "${t.name}": lora_B columns ≠ r ${r}`);
    }
  }
  for (const t of adapter.tensors) {
    const { part } = checkAdapterKey(t.name);
    if (part === "full") continue;
    const other = t.name.replace(
      part === "lora_A" ? ".lora_A." : ".lora_B.",
      part === "lora_A" ? ".lora_B." : ".lora_A.",
    );
    if (!seen.has(other)) throw new RangeError(`Cannot write adapter: "${t.name}" has no "${other}"`);
  }
  const files: AdapterFile[] = [];
  if (adapter.tokenizerModel) {
    const sp = adapter.specialTokens ?? { bos: "<s>", eos: "</s>", unk: "<unk>" };
    files.push(bytesFile("tokenizer.model", adapter.tokenizerModel));
    const map: Record<string, string> = { bos_token: sp.bos, eos_token: sp.eos, unk_token: sp.unk };
    if (sp.pad !== undefined) map.pad_token = sp.pad;
    files.push(bytesFile("special_tokens_map.json", utf8(JSON.stringify(map))));
    files.push(bytesFile(
      "tokenizer_config.json",
      utf8(JSON.stringify(
        sortKeys({
          ...map,
          ...(adapter.chatTemplate === undefined ? {} : { chat_template: adapter.chatTemplate }),
          model_max_length: 1e30,
          tokenizer_class: "LlamaTokenizer",
        }),
        null,
        2,
      )),
    ));
  }
  const dataSize = adapter.tensors.reduce((s, t) => s + t.data.length * (dtype === "F32" ? 4 : 2), 0);
  if (formats.includes("safetensors")) {
    const st: SafetensorsWriterTensor[] = adapter.tensors.map((t) => ({
      name: t.name,
      dtype,
      shape: t.shape,
      data: new Uint8Array(0),
    }));
    const { header } = encodeSafetensorsHeader(st, { format: "pt" });
    files.push({
      path: ADAPTER_SAFETENSORS_FILE,
      nBytes: header.length + dataSize,
      write(sink) {
        sink.write(header);
        for (const t of adapter.tensors) sink.write(tensorBytes(t, dtype));
      },
    });
  }
  if (formats.includes("bin")) {
    files.push({
      path: ADAPTER_BIN_FILE,
      nBytes: dataSize + 4096 + adapter.tensors.length * 256,
      write(sink) {
        writePytorchCheckpoint(
          sink,
          adapter.tensors.map((t) => ({
            name: t.name,
            dtype,
            shape: t.shape,
            write: (w: (b: Uint8Array) => void) => w(tensorBytes(t, dtype)),
          })),
          { archiveName: "adapter_model" },
        );
      },
    });
  }
  files.push(bytesFile(ADAPTER_CONFIG_FILE, utf8(JSON.stringify(adapter.config, null, 2))));
  return files;
}
