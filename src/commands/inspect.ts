/**
 * `inspect FILE|DIR [--json]`: what a model file or folder is — format, architecture/config, vocabulary size, tensor
 * table (name, dtype, shape, bytes) and metadata. Reads headers only (positional reads), never tensor data.
 * Formats: GGUF, safetensors (single or sharded index), PyTorch zip checkpoints (single or sharded index), Meta
 * folders (params.json + consolidated.*.pth), PEFT LoRA folders, llama2.c checkpoints and tokenizer.bin,
 * SentencePiece .model.
 */
import { FormatError, UserError } from "../core/errors.ts";
import type { ByteSource } from "../core/byte_source.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { ggufTypeName, readGguf } from "../formats/gguf.ts";
import { readLlama2cTokenizer } from "../formats/llama2c.ts";
import { readLlama2c } from "../model/llama2c_gguf.ts";
import { readSafetensors, readSafetensorsIndex } from "../formats/safetensors.ts";
import { FileSource } from "../io/file_source.ts";
import { parseFlags } from "./_args.ts";
import { KNOWN_VOCAB_SIZES } from "./_tokenizer_loader.ts";
import {
  GGUF_MAGIC,
  KEY_GENERAL_ARCHITECTURE,
  KEY_GENERAL_FILE_TYPE,
  KEY_TOKENIZER_LIST,
  LEGACY_GGML_MAGIC,
} from "../formats/gguf_constants.ts";
import { tensorName } from "../model/tensor_names.ts";

const USAGE = `usage: inspect FILE|DIR [--json]

Describes a model file or folder: format, architecture/config, vocabulary size, tensor table (name, dtype, shape,
bytes) and metadata. Reads only headers.

  FILE   .gguf, .safetensors, .bin/.pth (PyTorch zip or llama2.c), tokenizer.bin, tokenizer.model
  DIR    a Hugging Face folder (model.safetensors[.index.json] / pytorch_model*.bin), a Meta folder
         (params.json + consolidated.*.pth), or a PEFT LoRA folder (adapter_config.json + adapter_model.*)
  --json print one JSON object: {format, metadata, tensors: [{name, dtype, shape, nBytes}], shapeOrder, …}
  -h, --help`;

/** One row of the tensor table. */
export interface InspectTensor {
  name: string;
  dtype: string;
  shape: number[];
  nBytes: number;
  /** Shard file, for sharded models. */
  file?: string;
}

/** What `inspect` reports (also its --json output). */
export interface InspectReport {
  path: string;
  format: "gguf" | "safetensors" | "pytorch" | "meta" | "llama2c" | "llama2c-tokenizer" | "sentencepiece" | "lora";
  /** Weights' container format, for folders whose `format` describes the layout (lora, meta). */
  container?: string;
  version?: number;
  architecture?: string;
  config?: Record<string, unknown>;
  vocabSize?: number;
  /** What this vocabulary size usually is (32,000 / 49,953 / 49,954 …). */
  note?: string;
  /** GGUF keys verbatim (u64 beyond 2^53 as decimal strings), safetensors __metadata__, config.json, params.json. */
  metadata: Record<string, unknown>;
  /** For GGUF: each key's stored type ("UINT32", "ARRAY[STRING]", …). */
  metadataTypes?: Record<string, string>;
  /** "ggml ne: innermost first" for GGUF, "row-major: outermost first" otherwise. */
  shapeOrder: string;
  tensors: InspectTensor[];
  totalBytes: number;
  files?: string[];
  /** GGUF only. */
  alignment?: number;
  dataOffset?: number;
}

/** Entry point used by cli.ts. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const report = await inspectPath(positionals[0]);
  console.log(values.json ? JSON.stringify(report, jsonReplacer, 1) : formatReport(report));
  return 0;
}

function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

const ROW_MAJOR = "row-major: outermost first";

/** GGUF's FLOAT32 value type (gguf_type 6). */
const GGUF_FLOAT32 = 6;

/** The shortest decimal that rounds to the same float32 as `x` (what the file holds, printed as its writer meant). */
export function shortestF32(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const y = Number(f.toPrecision(p));
    if (Math.fround(y) === f) return y;
  }
  return f;
}

/** Pre-GGUF llama.cpp magics (u32, little endian, as llama.cpp wrote them): unversioned ggml, ggmf v1, ggjt v1–3, LoRA. */
const GGUF_ORDER = "ggml ne: innermost first";

/** Inspects a file or folder. Throws UserError for paths that do not exist or hold no model. */
export async function inspectPath(path: string): Promise<InspectReport> {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch {
    throw new UserError(`Cannot inspect "${path}": no such file or folder`);
  }
  return stat.isDirectory ? await inspectDir(path.replace(/\/+$/, "")) : await inspectFile(path);
}

function open(path: string): FileSource {
  return new FileSource(path);
}

async function inspectFile(path: string): Promise<InspectReport> {
  using src = open(path);
  const head = src.read(0, Math.min(16, src.size));
  const u32 = head.length >= 4 ? new DataView(head.buffer, head.byteOffset).getUint32(0, true) : -1;
  if (u32 === GGUF_MAGIC) return ggufReport(path, src);
  const legacy = LEGACY_GGML_MAGIC[u32];
  if (legacy !== undefined) {
    const version = legacy === "ggml" || head.length < 8
      ? ""
      : ` v${new DataView(head.buffer, head.byteOffset).getUint32(4, true)}`;
    throw new UserError(
      `Cannot inspect "${path}": it is a legacy llama.cpp ${legacy}${version} file (magic "${legacy}"), the format ` +
        "before GGUF (August 2023), which yangtuo does not read",
      "convert the original weights again with `deno task convert` (or llama.cpp's convert_llama_ggml_to_gguf.py)",
    );
  }
  if (head[0] === 0x50 && head[1] === 0x4b) return await pytorchReport(path, [[path, src]]);
  if (head.length >= 9 && head[8] === 0x7b && new DataView(head.buffer, head.byteOffset).getUint32(4, true) === 0) {
    const f = readSafetensors(src);
    return safetensorsReport(path, f.tensors, f.metadata);
  }
  if (/\.model$/.test(path)) return await sentencepieceReport(path, src);
  if (/tokenizer\.bin$|^tok\d+\.bin$/.test(path.split("/").pop()!)) return llama2cTokenizerReport(path, src);
  try {
    return llama2cReport(path, src);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    throw new UserError(
      `Cannot inspect "${path}": not a GGUF, safetensors, PyTorch zip or llama2.c file (${e.message})`,
      "inspect a .gguf, .safetensors, .bin/.pth checkpoint, tokenizer.model/.bin, or a model folder",
    );
  }
}

async function inspectDir(dir: string): Promise<InspectReport> {
  const names = new Set([...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name));
  const json = (n: string) => JSON.parse(Deno.readTextFileSync(`${dir}/${n}`)) as Record<string, unknown>;
  const config = names.has("config.json") ? json("config.json") : undefined;
  let report: InspectReport;
  if (names.has("adapter_config.json")) {
    const w = ["adapter_model.safetensors", "adapter_model.bin"].find((n) => names.has(n));
    if (!w) throw new UserError(`Cannot inspect "${dir}": adapter_config.json but no adapter_model.safetensors/.bin`);
    const inner = await inspectFile(`${dir}/${w}`);
    return {
      ...inner,
      path: dir,
      format: "lora",
      container: inner.format,
      config: json("adapter_config.json"),
      metadata: { ...inner.metadata, adapter_config: json("adapter_config.json") },
      files: [w],
    };
  }
  if (names.has("model.safetensors.index.json")) {
    const sources: FileSource[] = [];
    try {
      const m = readSafetensorsIndex(Deno.readTextFileSync(`${dir}/model.safetensors.index.json`), (f) => {
        const s = open(`${dir}/${f}`);
        sources.push(s);
        return s;
      });
      report = safetensorsReport(dir, m.tensors, m.metadata);
      report.files = [...m.sources.keys()];
    } finally {
      for (const s of sources) s.close();
    }
  } else if (names.has("model.safetensors")) {
    using src = open(`${dir}/model.safetensors`);
    const f = readSafetensors(src);
    report = safetensorsReport(dir, f.tensors, f.metadata);
    report.files = ["model.safetensors"];
  } else if (names.has("params.json") && [...names].some((n) => /^consolidated\.\d+\.pth$/.test(n))) {
    report = await metaReport(dir, [...names].filter((n) => /^consolidated\.\d+\.pth$/.test(n)).sort());
  } else if ([...names].some((n) => /^pytorch_model.*\.bin$/.test(n))) {
    const files = names.has("pytorch_model.bin.index.json")
      ? [...new Set(Object.values(json("pytorch_model.bin.index.json").weight_map as Record<string, string>))]
      : [...names].filter((n) => /^pytorch_model.*\.bin$/.test(n)).sort();
    for (const f of files) {
      if (!/^[^/\\]+$/.test(f) || f === "..") throw new UserError(`Cannot inspect "${dir}": bad shard name "${f}"`);
    }
    const srcs: [string, FileSource][] = files.map((f) => [f, open(`${dir}/${f}`)]);
    try {
      report = await pytorchReport(dir, srcs);
    } finally {
      for (const [, s] of srcs) s.close();
    }
    report.files = files;
  } else if (names.has("tokenizer.model")) {
    using src = open(`${dir}/tokenizer.model`);
    return await sentencepieceReport(dir, src);
  } else {
    throw new UserError(
      `Cannot inspect "${dir}": no model files found`,
      "expected model.safetensors[.index.json], pytorch_model*.bin, params.json + consolidated.*.pth, or adapter_config.json",
    );
  }
  if (config) {
    report.config = config;
    report.metadata = { ...report.metadata, "config.json": config };
    if (typeof config.vocab_size === "number") report.vocabSize = config.vocab_size;
    if (Array.isArray(config.architectures)) report.architecture = String(config.architectures[0]);
  }
  return report;
}

function table(tensors: readonly (TensorInfo & { file?: string })[], order: "rowMajor" | "ne"): InspectTensor[] {
  return tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: order === "ne" ? [...t.shape].reverse() : [...t.shape],
    nBytes: t.nBytes,
    ...(t.file ? { file: t.file } : {}),
  }));
}

function total(tensors: readonly { nBytes: number }[]): number {
  return tensors.reduce((s, t) => s + t.nBytes, 0);
}

/** Vocabulary size from the embedding's outer dimension (row-major shapes). */
function vocabFromEmbedding(tensors: readonly TensorInfo[]): number | undefined {
  const emb = tensors.find((t) => /(^|\.)(embed_tokens|tok_embeddings|token_embd)\.weight$/.test(t.name));
  return emb?.shape[0];
}

function ggufReport(path: string, src: ByteSource): InspectReport {
  const f = readGguf(src);
  const metadata: Record<string, unknown> = {};
  const metadataTypes: Record<string, string> = {};
  for (const [k, v] of f.metadata) {
    const t = f.metadataTypes.get(k)!;
    // a FLOAT32 value as the shortest decimal that is the same float32 (1e-5, not 0.000009999999747378752)
    metadata[k] = t.type === GGUF_FLOAT32 && typeof v === "number" ? shortestF32(v) : v;
    metadataTypes[k] = t.itemType !== undefined ? `ARRAY[${ggufTypeName(t.itemType)}]` : ggufTypeName(t.type);
  }
  const arch = typeof metadata[KEY_GENERAL_ARCHITECTURE] === "string"
    ? metadata[KEY_GENERAL_ARCHITECTURE] as string
    : "";
  const num = (k: string) => typeof metadata[`${arch}.${k}`] === "number" ? metadata[`${arch}.${k}`] : undefined;
  const tokens = f.metadata.get(KEY_TOKENIZER_LIST);
  const config: Record<string, unknown> = {
    dim: num("embedding_length"),
    hiddenDim: num("feed_forward_length"),
    nLayers: num("block_count"),
    nHeads: num("attention.head_count"),
    nKvHeads: num("attention.head_count_kv"),
    contextLength: num("context_length"),
    ropeDimensionCount: num("rope.dimension_count"),
    rmsNormEps: num("attention.layer_norm_rms_epsilon"),
    fileType: metadata[KEY_GENERAL_FILE_TYPE],
  };
  for (const k of Object.keys(config)) if (config[k] === undefined) delete config[k];
  return {
    path,
    format: "gguf",
    version: f.version,
    architecture: arch || undefined,
    config,
    vocabSize: Array.isArray(tokens) ? tokens.length : (num("vocab_size") as number | undefined),
    metadata,
    metadataTypes,
    shapeOrder: GGUF_ORDER,
    tensors: table(f.tensors, "ne"),
    totalBytes: total(f.tensors),
    alignment: f.alignment,
    dataOffset: f.dataOffset,
  };
}

function safetensorsReport(
  path: string,
  tensors: readonly (TensorInfo & { file?: string })[],
  metadata: Record<string, string>,
): InspectReport {
  return {
    path,
    format: "safetensors",
    vocabSize: vocabFromEmbedding(tensors),
    metadata: { ...metadata },
    shapeOrder: ROW_MAJOR,
    tensors: table(tensors, "rowMajor"),
    totalBytes: total(tensors),
  };
}

async function pytorchReport(path: string, sources: [string, ByteSource][]): Promise<InspectReport> {
  const { readPytorchCheckpoint } = await import("../formats/pytorch.ts");
  const all: (TensorInfo & { file?: string })[] = [];
  const extras: Record<string, unknown> = {};
  for (const [file, src] of sources) {
    const c = readPytorchCheckpoint(src);
    for (const t of c.tensors) all.push(sources.length > 1 ? { ...t, file: file.split("/").pop() } : t);
    for (const [k, v] of c.extras) if (isPlain(v)) extras[k] = v;
  }
  return {
    path,
    format: "pytorch",
    vocabSize: vocabFromEmbedding(all),
    metadata: extras,
    shapeOrder: ROW_MAJOR,
    tensors: table(all, "rowMajor"),
    totalBytes: total(all),
  };
}

function isPlain(v: unknown): boolean {
  return v === null || ["string", "number", "boolean"].includes(typeof v);
}

async function metaReport(dir: string, files: string[]): Promise<InspectReport> {
  const { readPytorchCheckpoint, readPytorchTensor } = await import("../formats/pytorch.ts");
  const { mergeMetaShards, parseMetaParams } = await import("../formats/meta.ts");
  const paramsText = Deno.readTextFileSync(`${dir}/params.json`);
  const params = parseMetaParams(paramsText, `${dir}/params.json`);
  const sources = files.map((f) => open(`${dir}/${f}`));
  try {
    const shards = sources.map((src) => {
      const c = readPytorchCheckpoint(src);
      return { tensors: c.tensors, read: (t: (typeof c.tensors)[number]) => readPytorchTensor(src, t) };
    });
    const merged = mergeMetaShards(shards);
    const tensors = merged.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, nBytes: t.nBytes }));
    const vocab = params.vocabSize > 0
      ? params.vocabSize
      : tensors.find((t) => t.name === tensorName("meta", "tok_embd"))?.shape[0];
    return {
      path: dir,
      format: "meta",
      container: "pytorch",
      config: { ...params },
      vocabSize: vocab,
      metadata: { "params.json": JSON.parse(paramsText) },
      shapeOrder: `${ROW_MAJOR} (merged across ${files.length} shard${files.length > 1 ? "s" : ""})`,
      tensors,
      totalBytes: total(tensors),
      files,
    };
  } finally {
    for (const s of sources) s.close();
  }
}

function llama2cReport(path: string, src: ByteSource): InspectReport {
  const f = readLlama2c(src);
  return {
    path,
    format: "llama2c",
    version: 0,
    architecture: "llama",
    config: { ...f.config },
    vocabSize: f.config.vocabSize,
    metadata: {},
    shapeOrder: `${ROW_MAJOR} (tensors named as in GGUF)`,
    tensors: table(f.tensors, "rowMajor"),
    totalBytes: total(f.tensors),
  };
}

function llama2cTokenizerReport(path: string, src: ByteSource): InspectReport {
  const t = readLlama2cTokenizer(src);
  return {
    path,
    format: "llama2c-tokenizer",
    vocabSize: t.pieces.length,
    metadata: { max_token_length: t.maxTokenLength, first_pieces: t.pieces.slice(0, 8) },
    shapeOrder: ROW_MAJOR,
    tensors: [],
    totalBytes: 0,
  };
}

/** SentencePiece piece types (sentencepiece_model.proto `ModelProto.SentencePiece.Type`). */
const PIECE_TYPES: Record<number, string> = {
  1: "normal",
  2: "unknown",
  3: "control",
  4: "user_defined",
  5: "unused",
  6: "byte",
};
const MODEL_TYPES: Record<number, string> = { 1: "unigram", 2: "bpe", 3: "word", 4: "char" };

async function sentencepieceReport(path: string, src: ByteSource): Promise<InspectReport> {
  const { readSentencePieceModel } = await import("../formats/sentencepiece_model.ts");
  if (src.size > 1 << 30) throw new UserError(`Cannot inspect "${path}": ${src.size} bytes is too large for a .model`);
  const m = readSentencePieceModel(src.read(0, src.size), path);
  const ts = m.trainerSpec ?? {}, ns = m.normalizerSpec ?? {};
  const counts: Record<string, number> = {};
  for (const p of m.pieces) {
    const t = PIECE_TYPES[p.type ?? 1] ?? `type ${p.type}`;
    counts[t] = (counts[t] ?? 0) + 1;
  }
  // proto defaults where the field is absent (sentencepiece_model.proto)
  const special = (id: number | undefined, fallback: number) => {
    const i = id ?? fallback;
    return i >= 0 && i < m.pieces.length ? `${i} ${JSON.stringify(m.pieces[i].piece)}` : String(i);
  };
  const config: Record<string, unknown> = {
    modelType: MODEL_TYPES[ts.modelType ?? 1] ?? `type ${ts.modelType}`,
    normalizer: ns.name ?? "nmt_nfkc",
    addDummyPrefix: ns.addDummyPrefix ?? true,
    removeExtraWhitespaces: ns.removeExtraWhitespaces ?? true,
    byteFallback: ts.byteFallback ?? false,
    unk: special(ts.unkId, 0),
    bos: special(ts.bosId, 1),
    eos: special(ts.eosId, 2),
    pad: special(ts.padId, -1),
    pieceTypes: counts,
  };
  const known = KNOWN_VOCAB_SIZES[m.pieces.length];
  return {
    path,
    format: "sentencepiece",
    config,
    vocabSize: m.pieces.length,
    ...(known ? { note: known } : {}),
    metadata: {
      first_pieces: m.pieces.slice(0, 8).map((p) => p.piece),
      last_pieces: m.pieces.slice(-3).map((p) => p.piece),
    },
    shapeOrder: ROW_MAJOR,
    tensors: [],
    totalBytes: 0,
  };
}

// ---- text output ---------------------------------------------------------------------------------------------

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

function fmtValue(v: unknown, type?: string): string {
  if (Array.isArray(v)) {
    const shown = v.slice(0, 6).map((x) => fmtValue(x)).join(", ");
    const head = `[${v.length}${type ? ` × ${type.replace(/^ARRAY\[|\]$/g, "")}` : ""}]`;
    return v.length > 6 ? `${head} ${shown}, …` : `${head} ${shown}`;
  }
  if (typeof v === "string") {
    const s = JSON.stringify(v);
    return s.length > 120 ? `${s.slice(0, 117)}…" (${v.length} chars)` : s;
  }
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number" && v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(); // 1e-5, not 0.00001
  if (v !== null && typeof v === "object") {
    const s = JSON.stringify(v);
    return s.length > 160 ? `${s.slice(0, 157)}…` : s;
  }
  return String(v);
}

/** The human-readable report: long arrays and strings are summarized. */
export function formatReport(r: InspectReport, maxTensors = 200): string {
  const out: string[] = [];
  out.push(`path: ${r.path}`);
  out.push(
    `format: ${r.format}${r.version !== undefined ? ` v${r.version}` : ""}${r.container ? ` (${r.container})` : ""}`,
  );
  if (r.architecture) out.push(`architecture: ${r.architecture}`);
  if (r.config && Object.keys(r.config).length) {
    out.push(`config: ${Object.entries(r.config).map(([k, v]) => `${k} ${fmtValue(v)}`).join(", ")}`);
  }
  if (r.vocabSize !== undefined) out.push(`vocab size: ${r.vocabSize}`);
  if (r.note) out.push(`note: ${r.note}`);
  if (r.files) out.push(`files: ${r.files.join(", ")}`);
  const keys = Object.keys(r.metadata);
  if (keys.length) {
    out.push(`metadata (${keys.length}):`);
    for (const k of keys) {
      const t = r.metadataTypes?.[k];
      out.push(`  ${k}${t && !t.startsWith("ARRAY") ? ` (${t})` : ""} = ${fmtValue(r.metadata[k], t)}`);
    }
  }
  out.push(`tensors (${r.tensors.length}, ${fmtBytes(r.totalBytes)}; shapes ${r.shapeOrder}):`);
  if (r.tensors.length) {
    const rows = r.tensors.slice(0, maxTensors).map((
      t,
    ) => [t.name, t.dtype, `[${t.shape.join(", ")}]`, String(t.nBytes), t.file ?? ""]);
    const head = ["name", "dtype", "shape", "bytes", r.tensors.some((t) => t.file) ? "file" : ""];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    for (const row of [head, ...rows]) {
      out.push(`  ${row.map((c, i) => (i === 3 ? c.padStart(w[i]) : c.padEnd(w[i]))).join("  ").trimEnd()}`);
    }
    if (r.tensors.length > maxTensors) out.push(`  … ${r.tensors.length - maxTensors} more (use --json for all)`);
  }
  return out.join("\n");
}
