/**
 * The one tokenizer loader every command uses (tokenize, generate, perplexity, …): a SentencePiece tokenizer.model,
 * a GGUF with tokenizer.ggml.* metadata, a llama2.c tokenizer.bin (as llama.cpp's convert-llama2c-to-ggml reads it),
 * or a Hugging Face / LoRA folder holding tokenizer.model. Errors are UserErrors naming the path and the flag.
 */
import { FormatError, UserError } from "../core/errors.ts";
import { readSentencePieceModel } from "../formats/sentencepiece_model.ts";
import { FileSource } from "../io/file_source.ts";
import { type Tokenizer, tokenizerFromGgufMetadata, tokenizerFromSentencePiece } from "../tokenizer/mod.ts";
import { ggufVocabFromLlama2c } from "./_tokenizer_bridge.ts";
import { GGUF_MAGIC_STRING } from "../formats/gguf_constants.ts";

/** What a vocabulary size usually means in the Chinese-LLaMA-Alpaca world (inspect, tokenize --compare). */
export const KNOWN_VOCAB_SIZES: Record<number, string> = {
  32000: "original LLaMA / Llama-2 tokenizer (Meta)",
  49953: "Chinese-LLaMA: LLaMA + 17,953 Chinese pieces from chinese_sp.model; use it with Chinese-LLaMA models and " +
    "LoRAs (49,954 = the Alpaca one, with [PAD])",
  49954: "Chinese-Alpaca: Chinese-LLaMA + [PAD] at id 49953; use it with Chinese-Alpaca models and LoRAs " +
    "(49,953 = the LLaMA one)",
  55296: "Chinese-LLaMA-2 / Chinese-Alpaca-2 tokenizer",
  20000: "chinese_sp.model, the Chinese SentencePiece model merged into LLaMA's",
};

/** Largest tokenizer file read whole (a GGUF is read by positional reads instead). */
const MAX_TOKENIZER_BYTES = 256 << 20;

const KINDS = "a SentencePiece tokenizer.model, a GGUF, a llama2.c tokenizer.bin, or a folder with tokenizer.model";

/** Loads the tokenizer at `path` (see the file header for the kinds); `flag` names the option in hints. */
export async function loadTokenizerFile(path: string, flag = "--tokenizer"): Promise<Tokenizer> {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(
        `Cannot open tokenizer "${path}": no such file or folder`,
        `check the path given with ${flag}`,
      );
    }
    throw e;
  }
  if (stat.isDirectory) {
    const inner = `${path.replace(/\/+$/, "")}/tokenizer.model`;
    try {
      Deno.statSync(inner);
    } catch {
      throw new UserError(`Cannot load a tokenizer from folder "${path}": it has no tokenizer.model`, `pass ${KINDS}`);
    }
    path = inner;
  }
  using src = new FileSource(path);
  const magic = src.read(0, Math.min(4, src.size));
  try {
    if (magic.length === 4 && new TextDecoder().decode(magic) === GGUF_MAGIC_STRING) {
      const { readGguf } = await import("../formats/gguf.ts");
      return tokenizerFromGgufMetadata(readGguf(src).metadata);
    }
    if (src.size > MAX_TOKENIZER_BYTES) {
      throw new UserError(`Cannot load tokenizer "${path}": ${src.size} bytes is too large for a tokenizer file`);
    }
    const bytes = src.read(0, src.size);
    const llama2c = () => {
      const kvs = ggufVocabFromLlama2c(bytes);
      return tokenizerFromGgufMetadata(new Map(kvs.map((kv) => [kv.key, kv.value])));
    };
    const sentencePiece = () => tokenizerFromSentencePiece(readSentencePieceModel(bytes, path));
    const [first, second] = /\.bin$/i.test(path) ? [llama2c, sentencePiece] : [sentencePiece, llama2c];
    try {
      return first();
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      try {
        return second();
      } catch {
        throw e;
      }
    }
  } catch (e) {
    if (e instanceof FormatError) {
      throw new UserError(`Cannot load tokenizer "${path}": ${e.message}`, `${flag} expects ${KINDS}`);
    }
    throw e;
  }
}
