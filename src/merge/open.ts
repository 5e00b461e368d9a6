/**
 * Opening merge inputs: a base checkpoint in any layout (HF folder with safetensors or .bin shards, Meta folder
 * with consolidated.*.pth + params.json, GGUF F32/F16/BF16 file, llama2.c file) and PEFT LoRA folders, as
 * SourceTensors keyed by tensorKey(kind, layer). File access goes through `ModelFs` (src/commands supplies the
 * Deno one), so this room stays pure.
 */
import { type ByteSource, BytesSource } from "../core/byte_source.ts";
import { FormatError, UnsupportedError, UserError } from "../core/errors.ts";
import { type GgufFile, readGguf } from "../formats/gguf.ts";
import { readLlama2cLayout } from "../formats/llama2c.ts";
import { readSafetensors } from "../formats/safetensors.ts";
import { type PytorchTensorInfo, readPytorchCheckpoint, readPytorchTensor } from "../formats/pytorch.ts";
import { configFromGgufMetadata, configFromHfConfig, configFromMetaParams, type LlamaConfig } from "../model/config.ts";
import { llama2cKind, type NameScheme, parseTensorName, tensorName } from "../model/tensor_names.ts";
import { metaShardAxis } from "../formats/meta.ts";
import { type LoraAdapter, loraAdapterFromTensors, parseAdapterConfig, tensorKey } from "./lora.ts";
import type { BaseCheckpoint } from "./plan.ts";
import { concatSourceTensors, decodeF32, rowsCols, type SourceTensor, sourceTensorFromInfo } from "./source_tensor.ts";
import { GGUF_MAGIC_STRING } from "../formats/gguf_constants.ts";

/** The file access the openers need. */
export interface ModelFs {
  /** "file", "dir", or undefined when the path does not exist. */
  kind(path: string): "file" | "dir" | undefined;
  /** Entry names of a folder. */
  list(dir: string): string[];
  readText(path: string): string;
  readBytes(path: string): Uint8Array;
  /** Opens a file for positional reads; the opener keeps it open until close(). */
  open(path: string): ByteSource & { close(): void };
}

/**
 * A ModelFs over files held in memory, keyed by path ("dir/name"); folders are the path prefixes. For tests,
 * examples and hosts without a file system (a browser with fetched or dropped files).
 */
export function memoryModelFs(files: Record<string, Uint8Array>): ModelFs {
  const get = (path: string) => {
    const bytes = files[path];
    if (!bytes) throw new RangeError(`Cannot read "${path}": no such file`);
    return bytes;
  };
  const children = (dir: string) => {
    const prefix = dir.endsWith("/") ? dir : `${dir}/`;
    return [
      ...new Set(
        Object.keys(files).filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length).split("/")[0]),
      ),
    ];
  };
  return {
    kind: (path) => (files[path] ? "file" : children(path).length > 0 ? "dir" : undefined),
    list: children,
    readText: (path) => new TextDecoder().decode(get(path)),
    readBytes: get,
    open: (path) => Object.assign(new BytesSource(get(path), path), { close() {} }),
  };
}

/** A base checkpoint with its files (for --sha256 and disk estimates) and a close(). */
export interface OpenedBase extends BaseCheckpoint {
  files: string[];
  /** GGUF bases: the parsed header (tokenizer KVs are copied from it when no other tokenizer is given). */
  gguf?: GgufFile;
  /** tokenizer.model found next to the base, if any. */
  tokenizerPath?: string;
  /** Total bytes of tensor data read. */
  inputBytes: number;
  close(): void;
}

/** A LoRA adapter with its files. */
export interface OpenedLora extends LoraAdapter {
  files: string[];
  inputBytes: number;
}

const join = (dir: string, name: string) => (dir.endsWith("/") ? dir + name : `${dir}/${name}`);

/** A SourceTensor for a PyTorch tensor: positional reads when contiguous, one gather otherwise. */
function pytorchSource(src: ByteSource, info: PytorchTensorInfo): SourceTensor {
  if (info.contiguous) return sourceTensorFromInfo(src, info);
  const [, cols] = rowsCols(info.shape);
  let cache: Float32Array | undefined;
  return {
    name: info.name,
    dtype: info.dtype,
    shape: info.shape,
    readRows(row0, nRows, dst = new Float32Array(nRows * cols)) {
      if (!cache) {
        cache = new Float32Array(rowsCols(info.shape).reduce((a, b) => a * b, 1));
        decodeF32(info.dtype, readPytorchTensor(src, info), cache);
      }
      const view = dst.subarray(0, nRows * cols);
      view.set(cache.subarray(row0 * cols, (row0 + nRows) * cols));
      return view;
    },
  };
}

/** Reads every tensor of a weights file (.safetensors, .bin/.pth zip) as SourceTensors, in file order. */
export function readWeightFile(fs: ModelFs, path: string, opened: { close(): void }[]): SourceTensor[] {
  const src = fs.open(path);
  opened.push(src);
  if (path.endsWith(".safetensors")) {
    const st = readSafetensors(src);
    return st.tensors.map((t) => sourceTensorFromInfo(src, t));
  }
  const ckpt = readPytorchCheckpoint(src, { path });
  return ckpt.tensors.map((t) => pytorchSource(src, t));
}

function keyed(tensors: SourceTensor[], scheme: NameScheme, label: string): Map<string, SourceTensor> {
  const m = new Map<string, SourceTensor>();
  for (const t of tensors) {
    const p = parseTensorName(scheme, t.name);
    if (!p) continue; // rope.freqs, rotary_emb.inv_freq, …
    const k = tensorKey(p.kind, p.layer);
    if (m.has(k)) {
      throw new FormatError(`Cannot open base model: tensor "${t.name}" appears twice`, {
        format: scheme,
        path: label,
      });
    }
    m.set(k, t);
  }
  return m;
}

function vocabOf(tensors: Map<string, SourceTensor>, label: string): number {
  const e = tensors.get("tok_embd");
  if (!e) {
    throw new UserError(`Cannot open base model "${label}": it has no token embedding`, "pass a LLaMA checkpoint");
  }
  return e.shape[0];
}

/** Opens a base checkpoint of any supported layout. */
export function openBase(fs: ModelFs, path: string): OpenedBase {
  const kind = fs.kind(path);
  if (kind === undefined) throw new UserError(`Cannot open base model: "${path}" does not exist`);
  const opened: { close(): void }[] = [];
  const close = () => opened.splice(0).forEach((f) => f.close());
  try {
    if (kind === "file") return openBaseFile(fs, path, opened, close);
    const names = fs.list(path).sort();
    const tokenizerPath = names.includes("tokenizer.model") ? join(path, "tokenizer.model") : undefined;
    const pths = names.filter((n) => /^consolidated\.\d+\.pth$/.test(n));
    if (pths.length > 0 && names.includes("params.json")) {
      const paramsPath = join(path, "params.json");
      const params = fs.readText(paramsPath);
      const shards: Map<string, SourceTensor>[] = [];
      for (const n of pths) shards.push(keyed(readWeightFile(fs, join(path, n), opened), "meta", path));
      const tensors = new Map<string, SourceTensor>();
      for (const [k, t0] of shards[0]) {
        const parts = shards.map((s, i) => {
          const t = s.get(k);
          if (!t) {
            throw new FormatError(`Cannot open Meta checkpoint: shard ${i} has no "${t0.name}"`, {
              format: "meta",
              path,
            });
          }
          return t;
        });
        const axis = parts.length === 1 ? "replicated" : metaShardAxis(t0.name, t0.shape.length);
        tensors.set(k, axis === "replicated" ? parts[0] : concatSourceTensors(t0.name, parts, axis));
      }
      const config = configFromMetaParams(params, vocabOf(tensors, path), paramsPath);
      return finish(
        { label: path, format: "meta", layout: "meta", config, tensors },
        pths.map((n) => join(path, n)),
        tokenizerPath,
        close,
      );
    }
    if (names.includes("config.json")) {
      const cfg = JSON.parse(fs.readText(join(path, "config.json")));
      let files = names.filter((n) => /^model(-\d+-of-\d+)?\.safetensors$/.test(n));
      if (files.length === 0) files = names.filter((n) => /^pytorch_model(-\d+-of-\d+)?\.bin$/.test(n));
      if (files.length === 0) {
        throw new UserError(
          `Cannot open HF model "${path}": no model*.safetensors or pytorch_model*.bin next to config.json`,
          "download the weight files too",
        );
      }
      const all: SourceTensor[] = [];
      for (const n of files) all.push(...readWeightFile(fs, join(path, n), opened));
      const tensors = keyed(all, "hf", path);
      const vocab = vocabOf(tensors, path);
      const config = configFromHfConfig({ ...cfg, vocab_size: vocab });
      return finish(
        { label: path, format: "hf", layout: "hf", config, tensors },
        files.map((n) => join(path, n)),
        tokenizerPath,
        close,
      );
    }
    throw new UserError(
      `Cannot open base model "${path}": no params.json + consolidated.*.pth (Meta) or config.json + weights (HF)`,
      "pass a Meta or Hugging Face LLaMA folder, or a .gguf / llama2.c .bin file",
    );
  } catch (e) {
    close();
    throw e;
  }
}

function finish(b: BaseCheckpoint, files: string[], tokenizerPath: string | undefined, close: () => void): OpenedBase {
  const inputBytes = [...b.tensors.values()].reduce((s, t) => s + bytesOf(t), 0);
  return { ...b, files, tokenizerPath, inputBytes, close };
}

function bytesOf(t: SourceTensor): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  return n * (t.dtype === "F32" ? 4 : 2);
}

function openBaseFile(
  fs: ModelFs,
  path: string,
  opened: { close(): void }[],
  close: () => void,
): OpenedBase {
  const src = fs.open(path);
  opened.push(src);
  const head = src.size >= 4 ? src.read(0, 4) : new Uint8Array(0);
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  const tok = fs.kind(join(dir, "tokenizer.model")) === "file" ? join(dir, "tokenizer.model") : undefined;
  if (head.length === 4 && new TextDecoder().decode(head) === GGUF_MAGIC_STRING) {
    const gguf = readGguf(src);
    const all = gguf.tensors.map((t) => {
      if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16") {
        throw new UserError(
          `Cannot merge into "${path}": tensor "${t.name}" is ${t.dtype}`,
          "merge needs an unquantized (F32/F16/BF16) base: convert the original weights instead",
        );
      }
      return sourceTensorFromInfo(src, t);
    });
    const tensors = keyed(all, "gguf", path);
    const config: LlamaConfig = configFromGgufMetadata(gguf.metadata as Map<string, unknown>, vocabOf(tensors, path));
    const inputBytes = gguf.tensors.reduce((s, t) => s + t.nBytes, 0);
    return {
      label: path,
      format: "gguf",
      layout: "meta",
      config,
      tensors,
      files: [path],
      gguf,
      tokenizerPath: tok,
      inputBytes,
      close,
    };
  }
  if (path.endsWith(".safetensors") || path.endsWith(".pth")) {
    throw new UserError(
      `Cannot open base model "${path}" as a single file`,
      "pass the folder that holds it (with config.json or params.json)",
    );
  }
  const m = readLlama2cLayout(src);
  const tensors = new Map<string, SourceTensor>();
  for (const { field, layer, ...t } of m.tensors) {
    const kind = llama2cKind(field);
    tensors.set(tensorKey(kind, layer), sourceTensorFromInfo(src, { name: tensorName("gguf", kind, layer), ...t }));
  }
  // llama2.c's run.c: RMSNorm eps 1e-5, RoPE base 10000, interleaved pairs (Meta layout).
  const lc = m.config;
  const config: LlamaConfig = {
    dim: lc.dim,
    hiddenDim: lc.hiddenDim,
    nLayers: lc.nLayers,
    nHeads: lc.nHeads,
    nKvHeads: lc.nKvHeads,
    headSize: lc.headSize,
    vocabSize: lc.vocabSize,
    contextLength: lc.seqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
  };
  const inputBytes = m.tensors.reduce((s: number, t: { nBytes: number }) => s + t.nBytes, 0);
  return {
    label: path,
    format: "llama2c",
    layout: "meta",
    config,
    tensors,
    files: [path],
    tokenizerPath: tok,
    inputBytes,
    close,
  };
}

/** Options of openLora. */
export interface OpenLoraOptions {
  /** Counts the pieces of a tokenizer.model (tokenizer room); without it the tokenizer is not sized. */
  tokenizerSize?: (bytes: Uint8Array) => number;
}

/** Opens a PEFT adapter folder (adapter_config.json + adapter_model.safetensors|.bin [+ tokenizer.model]). */
export function openLora(
  fs: ModelFs,
  dir: string,
  opened: { close(): void }[],
  opts: OpenLoraOptions = {},
): OpenedLora {
  if (fs.kind(dir) !== "dir") {
    throw new UserError(
      `Cannot open LoRA "${dir}": not a folder`,
      "a LoRA is a PEFT adapter folder (adapter_config.json + adapter_model.*)",
    );
  }
  const names = fs.list(dir);
  if (!names.includes("adapter_config.json")) {
    throw new UserError(
      `Cannot open LoRA "${dir}": no adapter_config.json`,
      "pass the folder of a PEFT LoRA (as downloaded)",
    );
  }
  const config = parseAdapterConfig(
    JSON.parse(fs.readText(join(dir, "adapter_config.json"))),
    join(dir, "adapter_config.json"),
  );
  const weights = names.includes("adapter_model.safetensors")
    ? "adapter_model.safetensors"
    : names.includes("adapter_model.bin")
    ? "adapter_model.bin"
    : undefined;
  if (!weights) {
    throw new UserError(
      `Cannot open LoRA "${dir}": no adapter_model.safetensors or adapter_model.bin`,
      "download the adapter weights too",
    );
  }
  const tensors = readWeightFile(fs, join(dir, weights), opened);
  for (const t of tensors) {
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16") {
      throw new UnsupportedError(`Cannot merge LoRA "${dir}": tensor "${t.name}" is ${t.dtype}, expected F32/F16/BF16`);
    }
  }
  const lora = loraAdapterFromTensors(dir, config, tensors);
  const files = [join(dir, "adapter_config.json"), join(dir, weights)];
  if (names.includes("tokenizer.model")) {
    const p = join(dir, "tokenizer.model");
    lora.tokenizerPath = p;
    files.push(p);
    if (opts.tokenizerSize) {
      const src = fs.open(p);
      try {
        lora.tokenizerSize = opts.tokenizerSize(src.read(0, src.size));
      } finally {
        src.close();
      }
    }
  }
  const inputBytes = tensors.reduce((s, t) => s + bytesOf(t), 0);
  return { ...lora, files, inputBytes };
}
