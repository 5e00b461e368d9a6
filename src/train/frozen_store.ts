/**
 * Frozen base weights held outside the kernels' memory and streamed in per layer: a TrainBase whose per-layer
 * matrices (q, k, v, o, gate, up, down) are read from the model file (positional reads of one layer, ~110 MB at 7B
 * Q4_0) when a forward or backward first touches that layer, and dropped again when `maxLayers` other layers have
 * been needed since (least recently used). A 7B Q4_0 base (~3.6 GiB of layer matrices) then never sits whole in
 * RAM, nor in one 4 GiB wasm32 memory next to the activations: the WASM kernels copy each matrix into their arena
 * for the call that uses it (create them with maxResidentBytes 0, else they keep their own copies).
 * The bytes are the file's, so every product, loss and gradient is bit-identical to the resident base
 * (tests/train/frozen_store_test.ts).
 * see: src/train/trainer.ts (trainBaseFromTable, the resident base), src/kernels/train_wasm.ts (resident / per-call)
 */
import type { FrozenType, FrozenWeight } from "../kernels/train_kernels.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { TensorKind } from "../model/tensor_names.ts";
import type { TensorTable } from "../model/weights.ts";
import { FROZEN_TYPES, type TrainBase, trainBaseFromTable } from "./trainer.ts";

/** The per-layer matrices a streamed base reads in per layer (tok_embd, output and norms stay resident). */
export const STREAMED_KINDS: readonly TensorKind[] = [
  "attn_q",
  "attn_k",
  "attn_v",
  "attn_output",
  "ffn_gate",
  "ffn_up",
  "ffn_down",
];

/** Options of streamedTrainBase. */
export interface StreamedBaseOptions {
  /**
   * Layers whose matrices stay loaded at once (default 1: a forward pass, and a backward pass with or without
   * recompute, touches one layer at a time). Infinity keeps every layer once read (all in JS memory).
   */
  maxLayers?: number;
  /** Called after each layer is read in (e.g. a progress line: a 7B step reads 2 × nLayers layers). */
  onLayerLoad?: (layer: number, stats: Readonly<FrozenStoreStats>) => void;
}

/** What a streamed base has read so far. */
export interface FrozenStoreStats {
  /** Layers read in (a layer needed again after eviction counts again). */
  layerLoads: number;
  /** Bytes read from the model file for layer matrices. */
  bytesRead: number;
  /** Bytes of layer matrices loaded now. */
  loadedBytes: number;
  /** The most layer-matrix bytes loaded at once. */
  peakLoadedBytes: number;
}

/** A TrainBase streaming its layer matrices from the file, with counters of what it read. */
export interface StreamedTrainBase extends TrainBase {
  readonly stats: Readonly<FrozenStoreStats>;
}

/** One layer matrix: where it is in the file and how it is kept. */
interface Slot {
  kind: TensorKind;
  type: FrozenType;
  /** GGUF dtype in the file (F32/F16/Q8_0/Q4_0 are kept as is; others are dequantized to f32 on load). */
  fileType: string;
  nOut: number;
  nIn: number;
  nBytes: number;
}

/**
 * The layer matrices of a tensor table, loaded per layer on demand, least recently used layer evicted first.
 * Evicted layers' buffers are reused for the next load (no garbage per load; every layer has the same shapes).
 */
class LayerStore {
  readonly stats: FrozenStoreStats = { layerLoads: 0, bytesRead: 0, loadedBytes: 0, peakLoadedBytes: 0 };
  /** layer → its matrices' bytes by kind index; Map order = least recently used first. */
  readonly #loaded = new Map<number, Uint8Array[]>();
  /** Buffers of evicted layers, by kind index. */
  #free: Uint8Array[][] = [];
  readonly #slots: Slot[];

  constructor(
    readonly table: TensorTable,
    readonly maxLayers: number,
    readonly onLoad?: (layer: number, stats: Readonly<FrozenStoreStats>) => void,
  ) {
    this.#slots = STREAMED_KINDS.map((kind) => {
      const t = table.info(kind, 0);
      const [nOut, nIn] = t.shape;
      const kept = FROZEN_TYPES.includes(t.dtype);
      const type: FrozenType = kept ? t.dtype as FrozenType : "F32";
      return { kind, type, fileType: t.dtype, nOut, nIn, nBytes: kept ? t.nBytes : 4 * nOut * nIn };
    });
  }

  slot(kind: TensorKind): Slot {
    const i = STREAMED_KINDS.indexOf(kind);
    return this.#slots[i];
  }

  /** The bytes of `kind` at `layer`, reading the layer in first when it is not loaded. */
  bytes(layer: number, kindIndex: number): Uint8Array {
    let m = this.#loaded.get(layer);
    if (m) {
      this.#loaded.delete(layer); // re-insert: most recently used last
      this.#loaded.set(layer, m);
      return m[kindIndex];
    }
    m = this.#load(layer);
    this.#loaded.set(layer, m);
    this.onLoad?.(layer, this.stats);
    return m[kindIndex];
  }

  #load(layer: number): Uint8Array[] {
    if (this.#loaded.size >= this.maxLayers) {
      const [oldest, bufs] = this.#loaded.entries().next().value!;
      this.#loaded.delete(oldest);
      this.#free.push(bufs);
      this.stats.loadedBytes -= bufs.reduce((s, b) => s + b.length, 0);
    }
    const reuse = this.#free.pop();
    const out: Uint8Array[] = [];
    for (let i = 0; i < this.#slots.length; i++) {
      const s = this.#slots[i];
      const t = this.table.info(s.kind, layer);
      if (t.dtype !== s.fileType || t.shape[0] !== s.nOut || t.shape[1] !== s.nIn) {
        throw new RangeError(
          `Cannot stream tensor "${t.name}": ${t.dtype} [${t.shape}] differs from layer 0's ${s.fileType} ` +
            `[${s.nOut},${s.nIn}]`,
        );
      }
      let b: Uint8Array;
      if (s.type === s.fileType) {
        b = reuse?.[i] ?? new Uint8Array(s.nBytes);
        this.table.file.source.readInto(t.byteOffset, b);
      } else {
        const f = this.table.f32(s.kind, layer);
        b = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
      }
      out.push(b);
      this.stats.bytesRead += t.nBytes;
      this.stats.loadedBytes += b.length;
    }
    this.stats.layerLoads++;
    this.stats.peakLoadedBytes = Math.max(this.stats.peakLoadedBytes, this.stats.loadedBytes);
    return out;
  }
}

/**
 * A frozen layer matrix whose bytes are read in when used. `bytes` is valid until another layer is loaded: take it
 * for one kernel call, never keep it (the kernels do not: the WASM ones copy it, or cache their copy by this
 * object's identity, which still holds the right layer's values).
 */
class StreamedWeight implements FrozenWeight {
  readonly type: FrozenType;
  readonly nOut: number;
  readonly nIn: number;
  readonly #store: LayerStore;
  readonly #layer: number;
  readonly #kindIndex: number;

  constructor(store: LayerStore, kind: TensorKind, layer: number) {
    const s = store.slot(kind);
    this.type = s.type;
    this.nOut = s.nOut;
    this.nIn = s.nIn;
    this.#store = store;
    this.#layer = layer;
    this.#kindIndex = STREAMED_KINDS.indexOf(kind);
  }

  get bytes(): Uint8Array {
    return this.#store.bytes(this.#layer, this.#kindIndex);
  }
}

/**
 * A base whose layer matrices stream from `table`'s file per layer (see the file header); tok_embd, output and the
 * norms are read once as in trainBaseFromTable. Same values, bit for bit, as trainBaseFromTable(table).
 *
 * @example
 * ```ts ignore
 * const kernels = await createWasmTrainKernels({ threads: 2, maxResidentBytes: 0 });
 * const base = streamedTrainBase(table);   // one layer's matrices in memory at a time
 * const trainer = new Trainer(base, { mode: "lora", lora, lr: 1e-4, maxSteps: 10, recompute: true }, kernels);
 * ```
 */
export function streamedTrainBase(table: TensorTable, options: StreamedBaseOptions = {}): StreamedTrainBase {
  const maxLayers = options.maxLayers ?? 1;
  if (!(maxLayers >= 1) || (maxLayers !== Infinity && !Number.isInteger(maxLayers))) {
    throw new RangeError(`Cannot stream base: maxLayers must be an integer >= 1 or Infinity, got ${maxLayers}`);
  }
  const resident = trainBaseFromTable(table);
  const c: LlamaConfig = resident.config;
  const store = new LayerStore(table, maxLayers, options.onLayerLoad);
  const handles = new Map<string, StreamedWeight>();
  return {
    config: c,
    tiedOutput: resident.tiedOutput,
    vector: resident.vector,
    stats: store.stats,
    matrix(kind: TensorKind, layer?: number): FrozenWeight {
      if (!STREAMED_KINDS.includes(kind)) return resident.matrix(kind, layer);
      if (layer === undefined || !Number.isInteger(layer) || layer < 0 || layer >= c.nLayers) {
        throw new RangeError(`Cannot read base matrix "${kind}": layer ${layer} is not in [0, ${c.nLayers})`);
      }
      const key = `${kind}.${layer}`;
      let w = handles.get(key);
      if (!w) handles.set(key, w = new StreamedWeight(store, kind, layer));
      return w;
    },
  };
}
