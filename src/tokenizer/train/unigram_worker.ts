/**
 * Worker entry of the UNIGRAM trainer: holds the lattices of some of spm_train's threads (LatticeShard each) and
 * runs their E-steps and Viterbi passes on request; no I/O. Protocol (one reply per request, in order; `remap`, when
 * present, renumbers the pieces before the pass):
 * 1. `{ type: "init", shards: ShardUnits[], pieceText, pieceOff }` → `{ ok: true }`
 * 2. `{ type: "estep", remap?, scores, unkScore, nPieces }` → `{ expected: Float32Array[], logLik }` (one vector per
 *    shard; logLik = Σ weight × log Z over its shards, for progress)
 * 3. `{ type: "viterbi", remap?, scores, unkScore, nPieces }` → `{ counts: ViterbiCounts[] }`
 * Errors come back as `{ error: message }`.
 */
import { LatticeShard, PieceTrie, type ShardUnits, type ViterbiCounts } from "./unigram_lattice.ts";

/** A request to the worker. */
export type UnigramWorkerRequest =
  | { type: "init"; shards: ShardUnits[]; pieceText: Int32Array; pieceOff: Int32Array }
  | {
    type: "estep" | "viterbi";
    remap?: Int32Array;
    scores: Float64Array;
    unkScore: number;
    nPieces: number;
  };

/** The worker's reply. */
export type UnigramWorkerReply =
  | { ok: true }
  | { expected: Float32Array[]; logLik: number }
  | { counts: ViterbiCounts[] }
  | { error: string };

interface WorkerScope {
  onmessage: ((e: MessageEvent<UnigramWorkerRequest>) => void) | null;
  postMessage(message: UnigramWorkerReply, transfer?: Transferable[]): void;
}

const scope = self as unknown as WorkerScope;
let shards: LatticeShard[] = [];

scope.onmessage = (e) => {
  const m = e.data;
  try {
    if (m.type === "init") {
      const trie = new PieceTrie(m.pieceText, m.pieceOff);
      shards = m.shards.map((s) => new LatticeShard(s, trie));
      scope.postMessage({ ok: true });
      return;
    }
    if (m.remap) { for (const s of shards) s.compact(m.remap, m); }
    if (m.type === "estep") {
      let logLik = 0;
      const expected = shards.map((s) => {
        const out = new Float32Array(m.nPieces);
        logLik += s.eStep(m, out);
        return out;
      });
      scope.postMessage({ expected, logLik }, expected.map((x) => x.buffer as ArrayBuffer));
    } else {
      const counts = shards.map((s) => s.viterbi(m, m.nPieces));
      scope.postMessage(
        { counts },
        counts.flatMap((c) => [c.freq.buffer, c.tokPiece.buffer, c.tokUnit.buffer] as ArrayBuffer[]),
      );
    }
  } catch (err) {
    scope.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
