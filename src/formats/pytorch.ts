/**
 * PyTorch checkpoints in the torch.save zip format (PyTorch ≥ 1.6: `pytorch_model-*.bin`, `adapter_model.bin`,
 * `consolidated.*.pth`), read lazily: the pickle is interpreted against a whitelist, and each tensor is described
 * by its storage entry, storage offset, shape and strides; its bytes are read on demand.
 * see: torch/serialization.py (_save, _load, persistent_id), torch/_utils.py (_rebuild_tensor_v2),
 * caffe2/serialize/inline_container.cc (archive layout)
 *
 * Archive layout (every entry stored, data 64-byte aligned; `<a>` is the archive name, e.g. "consolidated.00"):
 * 1. `<a>/data.pkl` — protocol-2 pickle of the state dict; each tensor is
 *    `torch._utils._rebuild_tensor_v2(pid, storage_offset, size, stride, requires_grad, backward_hooks)` with
 *    pid = `("storage", torch.HalfStorage, "<key>", "cpu", numel)` behind BINPERSID.
 * 2. `<a>/data/<key>` — one entry per storage: numel × element size bytes, little-endian.
 * 3. `<a>/version` ("3\n"); newer PyTorch adds `<a>/byteorder` ("little") and `<a>/.data/serialization_id`.
 */
import type { ByteSource } from "../core/byte_source.ts";
import { type DType, typeSizeOf } from "../core/dtypes.ts";
import { FormatError, UnsupportedError } from "../core/errors.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { PickleGlobal, PickleTuple, unpickle } from "./pickle.ts";
import { readZip, readZipEntry, type ZipArchive, type ZipEntry } from "./zip.ts";

/** torch storage classes and the dtypes they hold. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/** Storage classes that exist but that yangtuo does not read. */
const UNSUPPORTED_STORAGES = [
  "ComplexFloatStorage",
  "ComplexDoubleStorage",
  "QInt8Storage",
  "QUInt8Storage",
  "QInt32Storage",
  "QUInt4x2Storage",
  "QUInt2x4Storage",
  "UntypedStorage",
];

const REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";
const REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
const REBUILD_PARAMETER_STATE = "torch._utils._rebuild_parameter_with_state";
const REBUILD_FROM_TYPE = "torch._tensor._rebuild_from_type_v2";
const ORDERED_DICT = "collections.OrderedDict";
const TORCH_SIZE = "torch.Size";

/** The globals a state dict may name. Everything else (os.system, builtins.eval, …) is rejected by name. */
export const TORCH_ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  ORDERED_DICT,
  REBUILD_TENSOR,
  REBUILD_PARAMETER,
  REBUILD_PARAMETER_STATE,
  REBUILD_FROM_TYPE,
  TORCH_SIZE,
  "torch.Tensor",
  "torch.nn.parameter.Parameter",
  ...Object.keys(TORCH_STORAGE_DTYPES).map((s) => `torch.${s}`),
  ...UNSUPPORTED_STORAGES.map((s) => `torch.${s}`),
  ...["float16", "float32", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"].map((d) =>
    `torch.${d}`
  ),
]);

/** Largest data.pkl we interpret (a 65B state dict's pickle is well under 1 MiB). */
const MAX_PICKLE_BYTES = 256 << 20;
const MAX_DIMS = 64;

/** A tensor of a PyTorch checkpoint. */
export interface PytorchTensorInfo extends TensorInfo {
  /** Storage key: the tensor's bytes live in the zip entry `<archive>/data/<storageKey>`. */
  storageKey: string;
  /** Offset into the storage, in elements. */
  storageOffset: number;
  /** Strides in elements, outermost first. */
  stride: number[];
  /**
   * True when the tensor is one dense row-major run of its storage: then `byteOffset`/`nBytes` are its raw range
   * in the file. Non-contiguous views (a transposed weight) have `byteOffset` -1: read them with
   * `readPytorchTensor`, which gathers the elements.
   */
  contiguous: boolean;
  /** Absolute offset and size of the whole storage entry in the file. */
  storageByteOffset: number;
  storageNBytes: number;
}

/** A parsed checkpoint. */
export interface PytorchCheckpoint {
  format: "pytorch";
  /** Top-level folder of the zip ("archive", or the file's stem for torch.save(obj, "x.pth") → "x"). */
  archiveName: string;
  /** Tensors in the pickle's dict order. */
  tensors: PytorchTensorInfo[];
  byName: Map<string, PytorchTensorInfo>;
  /** Key the state dict was nested under ("state_dict", "model", "module"), when it was. */
  nestedUnder?: string;
  /**
   * Non-tensor entries, as unpickled: the top-level dict's, and when nested the inner dict's as "<key>.<name>".
   */
  extras: Map<string, unknown>;
  zip: ZipArchive;
}

/** Options for readPytorchCheckpoint. */
export interface ReadPytorchOptions {
  /** Path for error messages (default: the source's name). */
  path?: string;
}

interface StorageRef {
  readonly kind: "storage";
  key: string;
  dtype: DType;
  numel: number;
  entry: ZipEntry;
}

interface TensorRef {
  readonly kind: "tensor";
  storage: StorageRef;
  storageOffset: number;
  shape: number[];
  stride: number[];
}

const LEGACY_MAGIC = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/**
 * Reads the tensor table of a torch.save zip checkpoint. The state dict may be flat (name → tensor) or nested one
 * level under "state_dict", "model" or "module". Throws FormatError for malformed archives or pickles (including
 * any non-whitelisted global, named in the message) and UnsupportedError for the legacy pre-1.6 format,
 * big-endian checkpoints and storage types yangtuo does not read.
 *
 * @example
 * ```ts ignore
 * // src: a ByteSource, e.g. `using src = openFileSource("consolidated.00.pth")` from src/io
 * const ckpt = readPytorchCheckpoint(src);
 * const wq = readPytorchTensor(src, ckpt.byName.get("layers.0.attention.wq.weight")!);
 * ```
 */
export function readPytorchCheckpoint(src: ByteSource, options: ReadPytorchOptions = {}): PytorchCheckpoint {
  const path = options.path ?? src.name;
  const err = (msg: string, offset?: number) => new FormatError(msg, { format: "pytorch", offset, path });
  if (src.size >= 2 + 2 + LEGACY_MAGIC.length) {
    const head = src.read(0, 14);
    if (head[0] === 0x80 && head[2] === 0x8a && head[3] === 0x0a && LEGACY_MAGIC.every((b, i) => head[4 + i] === b)) {
      throw new UnsupportedError(
        "Cannot read PyTorch checkpoint: it uses the legacy (PyTorch < 1.6) non-zip format; re-save it with torch.save in PyTorch ≥ 1.6",
      );
    }
  }
  const zip = readZip(src, { path });
  if (zip.entries.length === 0) throw err("Cannot read PyTorch checkpoint: the zip archive is empty");
  const first = zip.entries[0].name;
  const slash = first.indexOf("/");
  if (slash <= 0) throw err(`Cannot read PyTorch checkpoint: entry "${first}" is not inside an archive folder`);
  const archiveName = first.slice(0, slash);
  const pklEntry = zip.byName.get(`${archiveName}/data.pkl`);
  if (!pklEntry) throw err(`Cannot read PyTorch checkpoint: "${archiveName}/data.pkl" is missing`);
  if (pklEntry.nBytes > MAX_PICKLE_BYTES) {
    throw err(`Cannot read PyTorch checkpoint: data.pkl has ${pklEntry.nBytes} bytes, over ${MAX_PICKLE_BYTES}`);
  }
  const bo = zip.byName.get(`${archiveName}/byteorder`);
  if (bo) {
    if (bo.nBytes > 16) throw err("Cannot read PyTorch checkpoint: byteorder record is too long", bo.dataOffset);
    const order = new TextDecoder().decode(readZipEntry(src, bo, { path })).trim();
    if (order === "big") {
      throw new UnsupportedError("Cannot read PyTorch checkpoint: big-endian checkpoints are not supported");
    }
    if (order !== "little") throw err(`Cannot read PyTorch checkpoint: byteorder "${order}" is not "little" or "big"`);
  }

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown, at: number): StorageRef => {
    if (!(pid instanceof PickleTuple) || pid.items.length !== 5 || pid.items[0] !== "storage") {
      throw err(
        "Cannot read PyTorch checkpoint: persistent id is not a ('storage', type, key, location, numel) tuple",
        at,
      );
    }
    const [, type, key, location, numel] = pid.items;
    if (!(type instanceof PickleGlobal) || type.module !== "torch") {
      throw err("Cannot read PyTorch checkpoint: storage type is not a torch storage class", at);
    }
    const dtype = TORCH_STORAGE_DTYPES[type.name];
    if (!dtype) {
      throw new UnsupportedError(`Cannot read PyTorch checkpoint: storage type "torch.${type.name}" is not supported`);
    }
    if (typeof key !== "string" || !/^[\w.-]{1,64}$/.test(key)) {
      throw err("Cannot read PyTorch checkpoint: bad storage key", at);
    }
    if (typeof location !== "string") throw err("Cannot read PyTorch checkpoint: storage location is not a string", at);
    if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0) {
      throw err(`Cannot read PyTorch checkpoint: storage "${key}" has bad element count ${String(numel)}`, at);
    }
    const seen = storages.get(key);
    if (seen) {
      if (seen.dtype !== dtype || seen.numel !== numel) {
        throw err(
          `Cannot read PyTorch checkpoint: storage "${key}" is declared twice with different types or sizes`,
          at,
        );
      }
      return seen;
    }
    const entry = zip.byName.get(`${archiveName}/data/${key}`);
    if (!entry) {
      throw err(`Cannot read PyTorch checkpoint: storage "${key}" has no entry "${archiveName}/data/${key}"`, at);
    }
    const want = numel * typeSizeOf(dtype);
    if (entry.nBytes !== want) {
      throw err(
        `Cannot read PyTorch checkpoint: storage "${key}" holds ${entry.nBytes} bytes, expected ${numel} × ${
          typeSizeOf(dtype)
        } = ${want}`,
        entry.dataOffset,
      );
    }
    const s: StorageRef = { kind: "storage", key, dtype, numel, entry };
    storages.set(key, s);
    return s;
  };

  const intList = (v: unknown, what: string, at: number): number[] => {
    const items = v instanceof PickleTuple ? v.items : undefined;
    if (!items || items.length > MAX_DIMS) {
      throw err(`Cannot read PyTorch checkpoint: tensor ${what} is not a tuple of ≤ ${MAX_DIMS} ints`, at);
    }
    return items.map((x) => {
      if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) {
        throw err(`Cannot read PyTorch checkpoint: tensor ${what} has a bad entry ${String(x)}`, at);
      }
      return x;
    });
  };

  const rebuildTensor = (args: unknown[], at: number): TensorRef => {
    if (args.length < 6 || args.length > 7) {
      throw err(`Cannot read PyTorch checkpoint: _rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`, at);
    }
    const [storage, storageOffset, size, stride] = args;
    if (!isStorage(storage)) {
      throw err("Cannot read PyTorch checkpoint: tensor storage is not a persistent storage", at);
    }
    if (typeof storageOffset !== "number" || !Number.isSafeInteger(storageOffset) || storageOffset < 0) {
      throw err(`Cannot read PyTorch checkpoint: bad storage offset ${String(storageOffset)}`, at);
    }
    const shape = intList(size, "size", at);
    const strides = intList(stride, "stride", at);
    if (shape.length !== strides.length) {
      throw err("Cannot read PyTorch checkpoint: tensor size and stride lengths differ", at);
    }
    let numel = 1;
    let last = storageOffset; // index of the last element touched
    for (let i = 0; i < shape.length; i++) {
      numel *= shape[i];
      if (!Number.isSafeInteger(numel)) throw err("Cannot read PyTorch checkpoint: tensor element count overflows", at);
    }
    if (numel > 0) {
      for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * strides[i];
      if (!Number.isSafeInteger(last) || last >= storage.numel) {
        throw err(
          `Cannot read PyTorch checkpoint: tensor view reaches element ${last} of storage "${storage.key}" with ${storage.numel} elements`,
          at,
        );
      }
      if (numel > storage.numel) {
        // Only self-overlapping views (expand()ed, stride 0) have more elements than their storage.
        throw new UnsupportedError(
          `Cannot read PyTorch checkpoint: tensor of ${numel} elements is a self-overlapping view of storage "${storage.key}" (${storage.numel} elements)`,
        );
      }
    } else if (storageOffset > storage.numel) {
      throw err(`Cannot read PyTorch checkpoint: storage offset ${storageOffset} is past storage "${storage.key}"`, at);
    }
    return { kind: "tensor", storage, storageOffset, shape, stride: strides };
  };

  const reduce = (fn: PickleGlobal, args: unknown[], at: number): unknown => {
    switch (fn.qualifiedName) {
      case ORDERED_DICT:
        if (args.length !== 0) throw err("Cannot read PyTorch checkpoint: OrderedDict with arguments", at);
        return new Map();
      case REBUILD_TENSOR:
        return rebuildTensor(args, at);
      case REBUILD_PARAMETER:
      case REBUILD_PARAMETER_STATE:
        if (!isTensor(args[0])) throw err("Cannot read PyTorch checkpoint: parameter data is not a tensor", at);
        return args[0];
      case REBUILD_FROM_TYPE: {
        const [func, type, fargs] = args;
        if (!(func instanceof PickleGlobal) || func.qualifiedName !== REBUILD_TENSOR) {
          throw err("Cannot read PyTorch checkpoint: _rebuild_from_type_v2 of something other than a tensor", at);
        }
        if (
          !(type instanceof PickleGlobal) ||
          !["torch.Tensor", "torch.nn.parameter.Parameter"].includes(type.qualifiedName)
        ) {
          throw err("Cannot read PyTorch checkpoint: _rebuild_from_type_v2 to a type other than Tensor/Parameter", at);
        }
        if (!(fargs instanceof PickleTuple)) {
          throw err("Cannot read PyTorch checkpoint: _rebuild_from_type_v2 arguments", at);
        }
        return rebuildTensor(fargs.items, at);
      }
      case TORCH_SIZE:
        if (args.length !== 1 || !(args[0] instanceof PickleTuple)) {
          throw err("Cannot read PyTorch checkpoint: bad torch.Size", at);
        }
        return args[0];
      default:
        throw err(`Cannot read PyTorch checkpoint: "${fn.qualifiedName}" cannot be called`, at);
    }
  };

  const build = (obj: unknown, _state: unknown, at: number): unknown => {
    // OrderedDict state dicts carry `_metadata` (module versions) as BUILD state; tensors may carry an empty state.
    if (obj instanceof Map || isTensor(obj)) return obj;
    throw err("Cannot read PyTorch checkpoint: BUILD on an unexpected object", at);
  };

  const pkl = readZipEntry(src, pklEntry, { path });
  const root = unpickle(pkl, {
    allowedGlobals: TORCH_ALLOWED_GLOBALS,
    reduce,
    build,
    persistentLoad,
    format: "pytorch",
    path,
    baseOffset: pklEntry.dataOffset,
    maxItems: Math.max(1024, 4 * pkl.length),
  });
  if (!(root instanceof Map)) throw err("Cannot read PyTorch checkpoint: the pickled object is not a dict");

  let dict = root as Map<unknown, unknown>;
  let nestedUnder: string | undefined;
  const hasTensor = (m: Map<unknown, unknown>) => [...m.values()].some(isTensor);
  if (!hasTensor(dict)) {
    for (const k of ["state_dict", "model", "module"]) {
      const v = dict.get(k);
      if (v instanceof Map && hasTensor(v)) {
        dict = v;
        nestedUnder = k;
        break;
      }
    }
  }
  const tensors: PytorchTensorInfo[] = [];
  const byName = new Map<string, PytorchTensorInfo>();
  const extras = new Map<string, unknown>();
  if (nestedUnder !== undefined) {
    for (const [k, v] of root as Map<unknown, unknown>) if (k !== nestedUnder) extras.set(String(k), v);
  }
  for (const [k, v] of dict) {
    if (!isTensor(v)) {
      extras.set(nestedUnder === undefined ? String(k) : `${nestedUnder}.${String(k)}`, v);
      continue;
    }
    if (typeof k !== "string") throw err(`Cannot read PyTorch checkpoint: tensor key ${String(k)} is not a string`);
    if (byName.has(k)) throw err(`Cannot read PyTorch checkpoint: duplicate tensor name "${k}"`);
    const info = describe(k, v);
    tensors.push(info);
    byName.set(k, info);
  }
  return { format: "pytorch", archiveName, tensors, byName, nestedUnder, extras, zip };
}

function isStorage(v: unknown): v is StorageRef {
  return typeof v === "object" && v !== null && (v as StorageRef).kind === "storage";
}

function isTensor(v: unknown): v is TensorRef {
  return typeof v === "object" && v !== null && (v as TensorRef).kind === "tensor";
}

function describe(name: string, t: TensorRef): PytorchTensorInfo {
  const es = typeSizeOf(t.storage.dtype);
  let numel = 1;
  for (const d of t.shape) numel *= d;
  const contiguous = isContiguous(t.shape, t.stride);
  return {
    name,
    dtype: t.storage.dtype,
    shape: t.shape,
    byteOffset: contiguous ? t.storage.entry.dataOffset + t.storageOffset * es : -1,
    nBytes: numel * es,
    storageKey: t.storage.key,
    storageOffset: t.storageOffset,
    stride: t.stride,
    contiguous,
    storageByteOffset: t.storage.entry.dataOffset,
    storageNBytes: t.storage.entry.nBytes,
  };
}

/** True when `stride` is the row-major stride of `shape` (dims of size 1 may have any stride). */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 0) return true;
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i];
  }
  return true;
}

/**
 * The row-major bytes of a tensor: one read for contiguous tensors, a gather for strided views (from one read of
 * the view's span when that span is at most 4× the tensor, else row by row).
 */
export function readPytorchTensor(src: ByteSource, info: PytorchTensorInfo): Uint8Array {
  if (info.contiguous) return src.read(info.byteOffset, info.nBytes);
  const es = typeSizeOf(info.dtype);
  const { shape, stride } = info;
  const out = new Uint8Array(info.nBytes);
  if (info.nBytes === 0) return out;
  const nd = shape.length;
  let span = 1;
  for (let i = 0; i < nd; i++) span += (shape[i] - 1) * stride[i];
  const rowLen = shape[nd - 1], rowStride = stride[nd - 1];
  const nRows = info.nBytes / es / rowLen;
  const idx = new Array(nd - 1).fill(0);
  const inMemory = span * es <= 4 * info.nBytes + (1 << 20);
  const buf = inMemory ? src.read(info.storageByteOffset + info.storageOffset * es, span * es) : undefined;
  let o = 0;
  for (let r = 0; r < nRows; r++) {
    let el = 0; // element offset of this row from the view's first element
    for (let i = 0; i < nd - 1; i++) el += idx[i] * stride[i];
    if (buf) {
      if (rowStride === 1) {
        out.set(buf.subarray(el * es, (el + rowLen) * es), o);
        o += rowLen * es;
      } else {
        for (let j = 0; j < rowLen; j++, o += es) {
          const s = (el + j * rowStride) * es;
          out.set(buf.subarray(s, s + es), o);
        }
      }
    } else {
      const base = info.storageByteOffset + (info.storageOffset + el) * es;
      if (rowStride === 1) {
        src.readInto(base, out.subarray(o, o + rowLen * es));
        o += rowLen * es;
      } else {
        for (let j = 0; j < rowLen; j++, o += es) src.readInto(base + j * rowStride * es, out.subarray(o, o + es));
      }
    }
    for (let i = nd - 2; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}
