/**
 * Merge worker: stage 2 of a row block (LoRA deltas, fp16 hold, q/k permutation, output encoding with the WASM
 * quantizers) for the pool in pool.ts. Messages:
 *   in  {type: "block", id, key, factors?, spec: FinishSpec, w: ArrayBuffer (f32), dtype}
 *   out {type: "done", id, bytes: ArrayBuffer} | {type: "error", id, message}
 * `factors` comes with the first block of each tensor this worker sees and is kept until the key changes.
 */
/// <reference lib="deno.worker" />
import { nBytesOf } from "../core/dtypes.ts";
import { encodeF32, loadQuantizers, REF_QUANTIZERS, type RowQuantizers } from "./encode.ts";
import { finishRows, type LoraFactors } from "./plan.ts";

let quantizers: RowQuantizers = REF_QUANTIZERS;
const ready = loadQuantizers().then((q) => void (quantizers = q));

let key = "";
let factors: LoraFactors[] = [];
let acc = new Float64Array(0);
const scratch = { tmp: new Float32Array(0) };

self.onmessage = async (e: MessageEvent) => {
  const m = e.data;
  try {
    await ready;
    if (m.factors) {
      factors = m.factors;
      key = m.key;
    }
    if (m.spec.scalings.length > 0 && m.key !== key) throw new Error(`no factors for "${m.key}"`);
    const w = new Float32Array(m.w);
    if (acc.length < m.spec.cols) acc = new Float64Array(m.spec.cols);
    finishRows(w, m.spec, m.spec.scalings.length > 0 ? factors : [], acc, scratch);
    const out = new Uint8Array(nBytesOf(m.dtype, w.length));
    encodeF32(m.dtype, w, out, quantizers);
    self.postMessage({ type: "done", id: m.id, bytes: out.buffer }, [out.buffer]);
  } catch (err) {
    self.postMessage({ type: "error", id: m.id, message: (err as Error).message });
  }
};
