/**
 * The public engine API: loadEngine(path) opens a GGUF model, reads its tokenizer and starts the fast engine
 * (engine_core.ts: shards in Workers on the WASM kernels) or the TS reference; generate() is the one-shot
 * completion loop on top of eval().
 * see: engine_core.ts, llama.cpp examples/main (the generation loop)
 */
import { BytesSource } from "../core/byte_source.ts";
import { FormatError, UserError } from "../core/errors.ts";
import { readGguf } from "../formats/gguf.ts";
import { FileSource } from "../io/file_source.ts";
import { type Tokenizer, tokenizerFromGgufMetadata } from "../tokenizer/mod.ts";
import { withTokenizer } from "./with_tokenizer.ts";
import { createEngine, type EngineBase, type EngineModel, type EngineOptions } from "./engine_core.ts";
import { GGUF_MAGIC_STRING } from "../formats/gguf_constants.ts";

export type { EngineOptions } from "./engine_core.ts";

/** A loaded model with its tokenizer, ready to evaluate tokens. */
export interface Engine extends EngineBase {
  readonly tokenizer: Tokenizer;
}

const GGUF_MAGIC_BYTES = new TextEncoder().encode(GGUF_MAGIC_STRING);

async function fromModel(
  model: EngineModel,
  options: EngineOptions,
  onClose?: () => void,
  given?: Tokenizer,
): Promise<Engine> {
  let tokenizer: Tokenizer;
  try {
    tokenizer = given ?? tokenizerFromGgufMetadata(model.metadata);
  } catch (e) {
    throw new UserError(
      `Cannot load the tokenizer from "${model.path ?? model.source.name ?? "model"}": ${(e as Error).message}`,
      "the GGUF needs tokenizer.ggml.* keys; convert the model with `deno task convert` to embed them",
      { cause: e },
    );
  }
  const base = await createEngine(model, options);
  return withTokenizer(base, tokenizer, onClose);
}

/**
 * Loads a GGUF model file: workers read their weight slices from `path` themselves.
 *
 * @example
 * ```ts ignore
 * const engine = await loadEngine("model-q4_0.gguf", { threads: 2, contextSize: 2048 });
 * const logits = await engine.eval(engine.tokenizer.encode("Hello", { bos: true }), 0);
 * engine.close();
 * ```
 */
export async function loadEngine(path: string, options: EngineOptions = {}): Promise<Engine> {
  let source: FileSource;
  try {
    source = new FileSource(path);
  } catch (e) {
    if ((e as Error).name === "NotFound") {
      throw new UserError(`Cannot open model "${path}": file not found`, "check the path given with -m", { cause: e });
    }
    if ((e as Error).name === "IsADirectory") {
      throw new UserError(`Cannot open model "${path}": it is a folder`, "pass the .gguf file inside it", { cause: e });
    }
    throw e;
  }
  try {
    const magic = source.size >= 4 ? source.read(0, 4) : new Uint8Array(0);
    if (!GGUF_MAGIC_BYTES.every((b, i) => magic[i] === b)) {
      throw new UserError(
        `Cannot load model "${path}": not a GGUF file`,
        "convert it first (`deno task convert`); llama2.c .bin checkpoints run with `generate --tokenizer tok.model`",
      );
    }
    const g = readGguf(source);
    return await fromModel(
      { metadata: g.metadata as Map<string, unknown>, tensors: g.tensors, source, path },
      options,
      () => source.close(),
    );
  } catch (e) {
    source.close();
    if (e instanceof FormatError) {
      throw new UserError(`Cannot load model "${path}": ${e.message}`, "the file is damaged or not a model", {
        cause: e,
      });
    }
    throw e;
  }
}

/**
 * Loads a GGUF model held in memory (e.g. converted on the fly from a llama2.c checkpoint); `tokenizer` replaces
 * the one in its metadata.
 */
export async function loadEngineFromBytes(
  bytes: Uint8Array,
  options: EngineOptions = {},
  name = "model",
  tokenizer?: Tokenizer,
): Promise<Engine> {
  const source = new BytesSource(bytes, name);
  const g = readGguf(source);
  const model = { metadata: g.metadata as Map<string, unknown>, tensors: g.tensors, source, bytes };
  return await fromModel(model, options, undefined, tokenizer);
}

export { generate, type GenerateOptions, type GenerateResult, type TokenPicker } from "./generate.ts";
