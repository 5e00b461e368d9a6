/**
 * Values of the rows `resize_token_embeddings` adds when the vocabulary grows (32,000 → 49,953 → 49,954).
 * transformers (the seed's 4.28 era) builds a fresh nn.Embedding / lm_head and runs `_init_weights` on it:
 * every new row ~ N(0, initializer_range²) with initializer_range = 0.02, from torch's global RNG. We keep the
 * distribution but make it reproducible: row r of a tensor draws from a PRNG seeded by (tensor, r), so any block
 * size gives the same bytes. These rows only survive when no later LoRA's modules_to_save replaces the matrix
 * (planMerge warns then); Chinese-LLaMA/Alpaca LoRAs always replace embed_tokens and lm_head.
 * see: transformers modeling_utils.py `_get_resized_embeddings`, LlamaPreTrainedModel._init_weights
 */

/** transformers LlamaConfig.initializer_range. */
export const INITIALIZER_RANGE = 0.02;

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Fills `dst` (one row) with N(0, 0.02²) values determined by (`salt`, `row`) only. */
export function initNewRow(salt: number, row: number, dst: Float32Array): void {
  let a = mix32((salt * 0x9e3779b1) ^ mix32(row + 0x632be5ab));
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < dst.length; i += 2) {
    const u = Math.max(next(), 1e-12), v = next();
    const m = Math.sqrt(-2 * Math.log(u)) * INITIALIZER_RANGE;
    dst[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < dst.length) dst[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
}

/** Salts per resized matrix, so embed_tokens and lm_head get different new rows (as torch's RNG would). */
export const RESIZE_SALT = { tok_embd: 1, output: 2 } as const;

/** Describes the vocabulary sizes a merge goes through and the tokenizer each LoRA brought. */
export function describeVocabSize(n: number): string {
  if (n === 32000) return "the original LLaMA tokenizer (32,000)";
  if (n === 49953) return "the Chinese-LLaMA tokenizer (49,953)";
  if (n === 49954) return "the Chinese-Alpaca tokenizer (49,954)";
  return `a ${n.toLocaleString("en-US")}-token tokenizer`;
}
