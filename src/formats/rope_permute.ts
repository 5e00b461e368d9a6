/**
 * Meta ↔ Hugging Face row order of the q and k projections. Meta (and GGUF, llama2.c) rotate interleaved pairs
 * (2j, 2j+1) of each head; HF's rotate-half RoPE pairs (j, j + D/2), so HF checkpoints store each head's rows
 * permuted. With D = headSize: meta row (h·D + 2j + p) = hf row (h·D + p·D/2 + j), p ∈ {0, 1}, j < D/2.
 * see: transformers convert_llama_weights_to_hf.py `permute`, the seed's merge script `unpermute`,
 *      ../shared/data/seed/tests/merge_vectors.json part "unpermute"
 */

/** The row layout of q/k weights: "hf" (rotate-half) or "meta" (interleaved pairs; also GGUF and llama2.c). */
export type RopeLayout = "hf" | "meta";

/**
 * For `nHeads` heads of `headSize` rows: map[o] = the source row that becomes output row o when converting
 * `from` → `to`. Identity when the layouts agree.
 */
export function ropeRowMap(nHeads: number, headSize: number, from: RopeLayout, to: RopeLayout): Int32Array {
  if (!Number.isInteger(nHeads) || nHeads <= 0 || !Number.isInteger(headSize) || headSize <= 0) {
    throw new RangeError(`Cannot permute rows: nHeads ${nHeads} and headSize ${headSize} must be positive integers`);
  }
  if (headSize % 2 !== 0) throw new RangeError(`Cannot permute rows: headSize ${headSize} is odd`);
  const map = new Int32Array(nHeads * headSize);
  const half = headSize / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < half; j++) {
      for (let p = 0; p < 2; p++) {
        const meta = h * headSize + 2 * j + p;
        const hf = h * headSize + p * half + j;
        if (from === to) map[meta] = meta;
        else if (from === "hf") map[meta] = hf; // output meta row takes hf row
        else map[hf] = meta; // output hf row takes meta row
      }
    }
  }
  return map;
}

/**
 * Reorders whole rows of a row-major (rows, cols) matrix: dst row o = src row map[o]. `map` may cover just the
 * first rows (head-aligned blocks: its entries must stay below map.length). Returns `dst`.
 */
export function permuteRows(
  src: Float32Array,
  cols: number,
  map: Int32Array,
  dst: Float32Array = new Float32Array(map.length * cols),
): Float32Array {
  if (src === dst) throw new RangeError("Cannot permute rows in place: src and dst are the same array");
  if (src.length < map.length * cols || dst.length < map.length * cols) {
    throw new RangeError(`Cannot permute rows: ${map.length} rows of ${cols} need ${map.length * cols} values`);
  }
  for (let o = 0; o < map.length; o++) {
    const s = map[o] * cols;
    dst.set(src.subarray(s, s + cols), o * cols);
  }
  return dst;
}

/** HF (rotate-half) → Meta (interleaved) for a (nHeads·headSize, cols) weight; the seed's `unpermute`. */
export function unpermuteHfToMeta(w: Float32Array, nHeads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  return permuteRows(w, cols, ropeRowMap(nHeads, rows / nHeads, "hf", "meta"));
}

/** Meta (interleaved) → HF (rotate-half); transformers' `permute`. */
export function permuteMetaToHf(w: Float32Array, nHeads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  return permuteRows(w, cols, ropeRowMap(nHeads, rows / nHeads, "meta", "hf"));
}
