/**
 * How Meta's model-parallel `consolidated.0N.pth` shards split each tensor, as the seed's merge script
 * `save_shards` writes them (and Meta's checkpoints are laid out): column-parallel weights (wq, wk, wv, w1, w3,
 * output) split rows, row-parallel ones (wo, w2) and tok_embeddings split columns, norms are replicated.
 * output.weight's uneven remainder goes to the last shard (13B, 49,953 rows: [24976, 24977]).
 * see: ../shared/data/seed/tests/merge_vectors.json part "pth_sharding"
 */
import { configToMetaParams, type LlamaConfig } from "../model/config.ts";
import { metaHiddenDim, metaShardAxis, metaShardSizes } from "../formats/meta.ts";
import { type TensorKind, tensorName } from "../model/tensor_names.ts";

/** Shards per model size in the seed (by dim): 7B 1, 13B 2, 33B 4, 65B 8; 1 for any other size. */
export function metaShardCount(dim: number): number {
  return ({ 4096: 1, 5120: 2, 6656: 4, 8192: 8 } as Record<number, number>)[dim] ?? 1;
}

/** The split of one tensor: along `dim` (0 rows, 1 columns) in `sizes`, or replicated (dim undefined). */
export interface MetaSplit {
  dim?: 0 | 1;
  sizes: number[];
}

/**
 * Where each shard's part of a tensor of `kind` and `shape` comes from: formats/meta.ts's rule (metaShardAxis,
 * metaShardSizes) in terms of tensor kinds. With one shard, split tensors keep their axis and one full-size part.
 */
export function metaSplit(kind: TensorKind, shape: readonly number[], nShards: number): MetaSplit {
  if (!Number.isInteger(nShards) || nShards < 1) throw new RangeError(`Cannot split: ${nShards} shards`);
  const name = tensorName("meta", kind, 0);
  const axis = metaShardAxis(name, shape.length);
  if (axis === "replicated") return { sizes: Array.from({ length: nShards }, () => shape[0]) };
  if (nShards === 1) return { dim: axis, sizes: [shape[axis]] };
  return { dim: axis, sizes: metaShardSizes(name, shape, nShards).sizes };
}

/** Shard `shard`'s part of a tensor: the split axis (undefined = replicated), its first index and size, its shape. */
export interface MetaShardOf {
  dim?: 0 | 1;
  start: number;
  size: number;
  shape: number[];
}

/** Where shard `shard` of `nShards` takes its part of a tensor of `kind` and `shape` (metaSplit's rule). */
export function metaShardOf(kind: TensorKind, shape: readonly number[], nShards: number, shard: number): MetaShardOf {
  const split = metaSplit(kind, shape, nShards);
  if (split.dim === undefined) return { start: 0, size: shape[0], shape: [...shape] };
  const start = split.sizes.slice(0, shard).reduce((a, b) => a + b, 0);
  const size = split.sizes[shard];
  const partShape = [...shape];
  partShape[split.dim] = size;
  return { dim: split.dim, start, size, shape: partShape };
}

/**
 * A Meta params.json object that reproduces `c` through configFromMetaParams: the seed's own dict for the
 * standard sizes (multiple_of 256), else multiple_of chosen so Meta's FFN-width rule gives hiddenDim exactly.
 */
export function metaParamsFor(c: LlamaConfig): Record<string, unknown> {
  const base = Math.floor((8 * c.dim) / 3);
  let multipleOf = 256;
  if (metaHiddenDim(c.dim, 256) !== c.hiddenDim) {
    if (c.hiddenDim < base) {
      throw new RangeError(
        `Cannot describe hiddenDim ${c.hiddenDim} in params.json: Meta's rule gives at least ${base} for dim ${c.dim}`,
      );
    }
    multipleOf = c.hiddenDim; // ceil(base / hiddenDim) = 1
  }
  const params: Record<string, unknown> = configToMetaParams(c, multipleOf);
  if (c.nKvHeads !== c.nHeads) params.n_kv_heads = c.nKvHeads;
  if (c.ropeTheta !== 10000) params.rope_theta = c.ropeTheta;
  return params;
}
