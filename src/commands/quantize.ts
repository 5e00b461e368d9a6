/**
 * `quantize IN.gguf OUT.gguf TYPE`: rewrite a GGUF at q4_0 / q8_0 / f16 / f32, streaming one tensor at a time
 * (row blocks of ~1 Mi values), quantized in WASM; the output appears only when complete (temp file + rename).
 * Type rules: src/quant/quantize_plan.ts (llama.cpp --pure: 2-D weights at TYPE, 1-D tensors F32).
 */
import { UsageError, UserError } from "../core/errors.ts";
import { type DType, nBytesOf } from "../core/dtypes.ts";
import { readGguf } from "../formats/gguf.ts";
import { ggufKv, ggufKvsOf, writeGguf } from "../formats/gguf_writer.ts";
import { FileSource } from "../io/mod.ts";
import { encodeF32, type RowQuantizers } from "../merge/encode.ts";
import { isReadableFloat, nElementsOf, rowsCols, sourceTensorFromInfo } from "../merge/source_tensor.ts";
import { dequantizeRowQ4_0Ref } from "../quant/q4_0.ts";
import { dequantizeRowQ8_0Ref } from "../quant/q8_0.ts";
import { LLAMA_FTYPE, parseQuantTarget, type QuantTarget, quantTypeFor } from "../quant/quantize_plan.ts";
import type { TensorInfo } from "../core/tensor.ts";
import type { ByteSource } from "../core/byte_source.ts";
import { intFlag, parseFlags } from "./_args.ts";
import { MergePool, poolSizeFor } from "./_merge_pool.ts";
import { checkDiskSpace, checkInputPath, checkOutputFile, interruptibleSink, yieldToEventLoop } from "./_model_fs.ts";
import { formatBytes, formatDuration, Progress } from "./_progress.ts";
import { loadQuantizers } from "./merge.ts";

const USAGE = `usage: deno task quantize IN.gguf OUT.gguf TYPE [--allow-requantize] [--force]

TYPE: q4_0 | q8_0 | f16 | f32. Weights with 2+ dimensions take TYPE (token_embd and output.weight too, like
llama.cpp's --pure); 1-D tensors (norms) stay F32; rows that are not whole blocks fall back to F16.

  -t, --threads N      threads: main reads, N-1 workers quantize (default 1, see bench/README.md)
  --allow-requantize   accept Q4_0/Q8_0 input tensors (dequantized first; quality suffers)
  --force              overwrite OUT.gguf if it exists
  -h, --help           show this help`;

/** Reads rows of any tensor a GGUF may hold that we can decode (F32/F16/BF16/Q4_0/Q8_0) as f32. */
function readRowsF32(src: ByteSource, info: TensorInfo, row0: number, nRows: number, dst: Float32Array): Float32Array {
  if (isReadableFloat(info.dtype)) return sourceTensorFromInfo(src, info).readRows(row0, nRows, dst);
  const [, cols] = rowsCols(info.shape);
  const rowBytes = nBytesOf(info.dtype, cols);
  const bytes = src.read(info.byteOffset + row0 * rowBytes, nRows * rowBytes);
  const out = dst.subarray(0, nRows * cols);
  if (info.dtype === "Q4_0") dequantizeRowQ4_0Ref(bytes, out);
  else if (info.dtype === "Q8_0") dequantizeRowQ8_0Ref(bytes, out);
  else throw new UserError(`Cannot quantize tensor "${info.name}": input type ${info.dtype} is not supported`);
  return out;
}

/** Options of quantizeGguf. */
export interface QuantizeOptions {
  allowRequantize?: boolean;
  quantizers?: RowQuantizers;
  onBytes?: (n: number) => void;
  /** Awaited before each tensor (the command yields to the event loop so Ctrl+C is seen). */
  beforeTensor?: () => Promise<void>;
  /** Workers to quantize in (same bytes); the main thread only reads. */
  pool?: MergePool;
}

/** Writes `src` (a parsed GGUF) at `target` into `sink`. */
export async function quantizeGguf(
  src: ByteSource,
  sink: { position: number; write(b: Uint8Array): void },
  target: QuantTarget,
  opts: QuantizeOptions = {},
): Promise<{ tensors: number; types: Map<DType, number> }> {
  const file = readGguf(src);
  const types = new Map<DType, number>();
  const tensors = file.tensors.map((info) => {
    let dtype = quantTypeFor(info.shape, target);
    if (!isReadableFloat(info.dtype)) {
      if (info.dtype === dtype) {
        // already at the target: copy the bytes through
      } else if (info.dtype !== "Q4_0" && info.dtype !== "Q8_0") {
        throw new UserError(`Cannot quantize "${info.name}": input type ${info.dtype} is not supported`);
      } else if (!opts.allowRequantize) {
        throw new UserError(
          `Cannot quantize "${info.name}": it is already ${info.dtype}`,
          "quantize from the f16/f32 GGUF instead (or pass --allow-requantize and accept the extra error)",
        );
      }
    }
    if (info.shape.length < 2) dtype = "F32";
    types.set(dtype, (types.get(dtype) ?? 0) + 1);
    return {
      name: info.name,
      dtype,
      shape: info.shape,
      data: async () => {
        await opts.beforeTensor?.();
        if (info.dtype === dtype) {
          opts.onBytes?.(info.nBytes);
          return src.read(info.byteOffset, info.nBytes);
        }
        const [rows, cols] = rowsCols(info.shape);
        const rowIn = info.nBytes / rows;
        if (opts.pool) {
          return await opts.pool.encodeTensor(
            rows,
            cols,
            dtype,
            (r, n, dst) => void readRowsF32(src, info, r, n, dst),
            (n) => opts.onBytes?.(n * rowIn),
          );
        }
        const out = new Uint8Array(nBytesOf(dtype, nElementsOf(info.shape)));
        const rowOut = nBytesOf(dtype, cols);
        const step = Math.max(1, Math.floor((1 << 20) / cols));
        const buf = new Float32Array(step * cols);
        for (let r = 0; r < rows; r += step) {
          const n = Math.min(step, rows - r);
          const x = readRowsF32(src, info, r, n, buf);
          encodeF32(dtype, x, out.subarray(r * rowOut, (r + n) * rowOut), opts.quantizers);
          opts.onBytes?.(n * rowIn);
        }
        return out;
      },
    };
  });
  const kvs = ggufKvsOf(file).filter((kv) =>
    kv.key !== "general.file_type" && kv.key !== "general.quantization_version"
  );
  kvs.push(ggufKv.u32("general.file_type", LLAMA_FTYPE[target]));
  if (target === "Q4_0" || target === "Q8_0") kvs.push(ggufKv.u32("general.quantization_version", 2));
  await writeGguf(sink, { metadata: kvs, tensors, alignment: file.alignment });
  return { tensors: tensors.length, types };
}

/** Entry point. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    "allow-requantize": { type: "boolean", default: false },
    threads: { type: "string", short: "t" },
    force: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 3) throw new UsageError("expected IN.gguf OUT.gguf TYPE");
  const [inPath, outPath, typeName] = positionals;
  const target = parseQuantTarget(typeName);
  if (!target) throw new UsageError(`TYPE must be q4_0, q8_0, f16 or f32, got "${typeName}"`);
  checkInputPath(inPath, "file", "IN.gguf");
  checkOutputFile(outPath, values.force);
  using src = new FileSource(inPath);
  const outDir = outPath.includes("/") ? outPath.slice(0, outPath.lastIndexOf("/")) || "/" : ".";
  const ratio = target === "Q4_0" ? 18 / 64 : target === "Q8_0" ? 34 / 64 : target === "F16" ? 0.5 : 1;
  const warning = checkDiskSpace(outDir, src.size * ratio * 2);
  if (warning) console.error(`warning: ${warning}`);
  const bar = new Progress("quantize", src.size);
  const threads = values.threads === undefined ? 1 : intFlag(values.threads, "--threads", 1, 1);
  const pool = poolSizeFor(threads) > 0 ? new MergePool(poolSizeFor(threads)) : undefined;
  const { sink, release } = interruptibleSink(outPath);
  const t0 = performance.now();
  try {
    const r = await quantizeGguf(src, sink, target, {
      allowRequantize: values["allow-requantize"],
      quantizers: await loadQuantizers(),
      onBytes: (n) => bar.add(n),
      beforeTensor: yieldToEventLoop,
      pool,
    });
    sink.commit();
    bar.finish();
    const secs = (performance.now() - t0) / 1000;
    const types = [...r.types].map(([t, n]) => `${n} ${t}`).join(", ");
    console.log(
      `wrote ${outPath}: ${r.tensors} tensors (${types}), ${formatBytes(sink.position)} in ${formatDuration(secs)} ` +
        `(${formatBytes(src.size / Math.max(secs, 1e-3))}/s of input)`,
    );
    return 0;
  } catch (e) {
    sink.abort();
    throw e;
  } finally {
    release();
    pool?.close();
  }
}
