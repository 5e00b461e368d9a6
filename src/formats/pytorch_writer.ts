/**
 * Writes a state dict in the torch.save zip format (`consolidated.0N.pth`, `pytorch_model.bin`), streaming tensor
 * by tensor: the pickle needs only names, dtypes and shapes; each tensor's bytes come from its `write` callback
 * straight into the sink, CRC-32 computed on the way.
 * see: torch/serialization.py `_save` (pickle protocol 2, one storage per tensor, data/<key> entries),
 * caffe2/serialize/inline_container.cc (archive folder = file stem, 64-byte alignment, version record)
 *
 * Layout written (`<a>` = archive name):
 * 1. `<a>/data.pkl` — `{name: _rebuild_tensor_v2(("storage", torch.<T>Storage, "<i>", "cpu", numel), 0, shape,
 *    stride, False, OrderedDict())}`, a plain dict as the seed's merge script saves.
 * 2. `<a>/byteorder` — "little" (PyTorch ≥ 2.1 writes it; older versions ignore it).
 * 3. `<a>/data/<i>` — tensor i's row-major bytes, i = 0, 1, … in the order given.
 * 4. `<a>/version` — "3\n".
 */
import type { ByteSink } from "../core/byte_source.ts";
import { checkedProduct, type DType, typeSizeOf } from "../core/dtypes.ts";
import { PickleWriter } from "./pickle.ts";
import { TORCH_STORAGE_DTYPES } from "./pytorch.ts";
import { ZipWriter } from "./zip.ts";

/** A tensor to write: its description and a callback that writes exactly its row-major bytes. */
export interface PthTensorSource {
  name: string;
  dtype: DType;
  /** Row-major shape, outermost first. */
  shape: readonly number[];
  /** Writes the tensor's nElements × element-size bytes, in as many chunks as it likes. */
  write(write: (chunk: Uint8Array) => void): void;
}

/** Options for writePytorchCheckpoint. */
export interface WritePthOptions {
  /** Top-level folder in the zip; torch uses the file's stem ("consolidated.00"). Default "archive". */
  archiveName?: string;
}

const STORAGE_OF = new Map<DType, string>(Object.entries(TORCH_STORAGE_DTYPES).map(([k, v]) => [v, k]));

/** The archive name torch.save derives from a file name: "dir/consolidated.00.pth" → "consolidated.00". */
export function pthArchiveName(fileName: string): string {
  const base = fileName.slice(fileName.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  const stem = dot > 0 ? base.slice(0, dot) : base;
  return stem || "archive";
}

/**
 * Writes `tensors` as a torch.save checkpoint to `sink`. Throws RangeError for duplicate names, dtypes PyTorch
 * cannot hold (quantized blocks), bad shapes, or a callback writing the wrong number of bytes.
 *
 * @example
 * ```ts
 * import { BytesSink } from "../core/byte_source.ts";
 * import { writePytorchCheckpoint } from "./pytorch_writer.ts";
 * const sink = new BytesSink();
 * const data = new Float32Array([1, 2, 3, 4]);
 * writePytorchCheckpoint(sink, [
 *   { name: "norm.weight", dtype: "F32", shape: [4], write: (w) => w(new Uint8Array(data.buffer)) },
 * ], { archiveName: "consolidated.00" });
 * ```
 */
export function writePytorchCheckpoint(
  sink: ByteSink,
  tensors: readonly PthTensorSource[],
  options: WritePthOptions = {},
): void {
  const archive = options.archiveName ?? "archive";
  if (!/^[^/\n]{1,200}$/.test(archive)) throw new RangeError(`Cannot write checkpoint: bad archive name "${archive}"`);
  const names = new Set<string>();
  const sizes: number[] = [];
  const p = new PickleWriter();
  p.emptyDict();
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    if (names.has(t.name)) throw new RangeError(`Cannot write checkpoint: duplicate tensor name "${t.name}"`);
    names.add(t.name);
    const storage = STORAGE_OF.get(t.dtype);
    if (!storage) throw new RangeError(`Cannot write checkpoint: PyTorch has no storage for dtype "${t.dtype}"`);
    const numel = checkedProduct(t.shape);
    if (numel === undefined) throw new RangeError(`Cannot write checkpoint: bad shape [${t.shape}] for "${t.name}"`);
    sizes.push(numel * typeSizeOf(t.dtype));
    const stride: number[] = new Array(t.shape.length);
    for (let d = t.shape.length - 1, s = 1; d >= 0; d--) {
      stride[d] = s;
      s *= t.shape[d];
    }
    if (i % 1000 === 0) {
      if (i > 0) p.setItems();
      p.mark();
    }
    p.str(t.name);
    p.global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", storage).str(String(i)).str("cpu").int(numel).tuple().binPersId();
    p.int(0).intTuple(t.shape).intTuple(stride).bool(false);
    p.global("collections", "OrderedDict").emptyTuple().reduce();
    p.tuple().reduce();
  }
  if (tensors.length > 0) p.setItems();
  const zip = new ZipWriter(sink, { align: 64 });
  const enc = new TextEncoder();
  zip.add(`${archive}/data.pkl`, p.finish());
  zip.add(`${archive}/byteorder`, enc.encode("little"));
  for (let i = 0; i < tensors.length; i++) {
    zip.addStreamed(`${archive}/data/${i}`, sizes[i], (w) => tensors[i].write(w));
  }
  zip.add(`${archive}/version`, enc.encode("3\n"));
  zip.finish();
}
