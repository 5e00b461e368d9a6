/**
 * withTokenizer(): an engine core plus its tokenizer is the `Engine` that commands, chat and serve use; shared by
 * loadEngine() (Deno, a file) and loadEngineFromBlob() (a browser Blob).
 */
import type { Tokenizer } from "../tokenizer/mod.ts";
import type { Engine } from "./engine.ts";
import type { EngineBase } from "./engine_core.ts";

export function withTokenizer(base: EngineBase, tokenizer: Tokenizer, onClose?: () => void): Engine {
  return {
    config: base.config,
    contextSize: base.contextSize,
    metadata: base.metadata,
    nShards: base.nShards,
    nThreads: base.nThreads,
    tokenizer,
    eval: (tokens, startPos) => base.eval(tokens, startPos),
    evalAll: (tokens, startPos) => base.evalAll(tokens, startPos),
    slots: base.slots,
    evalSlot: (slot, tokens, startPos) => base.evalSlot(slot, tokens, startPos),
    evalBatch: (rows, nLogits) => base.evalBatch(rows, nLogits),
    evalHidden: (slot, tokens, startPos) => base.evalHidden(slot, tokens, startPos),
    close() {
      base.close();
      onClose?.();
    },
  };
}
