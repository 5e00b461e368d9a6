/**
 * `merge-tokenizer --base FILE --add FILE [--pad] --output-dir DIR [--force]`: Chinese-LLaMA's vocabulary extension
 * (merge_tokenizers.py): writes DIR/tokenizer.model (+ tokenizer_config.json, special_tokens_map.json) atomically.
 */
import { UsageError, UserError } from "../core/errors.ts";
import { readSentencePieceModel, writeSentencePieceModel } from "../formats/sentencepiece_model.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { extendVocabulary, huggingFaceTokenizerFiles, tokenizerFromSentencePiece } from "../tokenizer/mod.ts";
import { parseFlags } from "./_args.ts";
import { checkInputPath } from "./_model_fs.ts";

const USAGE = `usage: merge-tokenizer --base FILE --add FILE [--pad] [--byte-fallback] --output-dir DIR [--force]

Appends the pieces of --add that --base lacks (in --add's order, score 0, NORMAL), as Chinese-LLaMA-Alpaca's
merge_tokenizers.py. LLaMA's tokenizer.model + chinese_sp.model gives the official Chinese-LLaMA tokenizer (49,953
pieces, sha256 e2676d4c…); with --pad, Chinese-Alpaca's (49,954 pieces with [PAD], sha256 2d967e85…).

  --base FILE        SentencePiece model to extend (e.g. LLaMA's tokenizer.model)
  --add FILE         SentencePiece model whose pieces are appended (e.g. chinese_sp.model)
  --pad              also append [PAD] (Chinese-Alpaca) and name it pad_token in the Hugging Face files
  --byte-fallback    also append the 256 <0xXX> BYTE pieces --base lacks and turn on byte fallback, as LLaMA's
                     vocabulary has them: characters outside the vocabulary become bytes instead of <unk>
                     (llama.cpp needs them; e.g. a base like babyllama's tok105 has none)
  --output-dir DIR   writes tokenizer.model, tokenizer_config.json, special_tokens_map.json (created if missing)
  --force            overwrite existing files
  -h, --help`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    base: { type: "string" },
    add: { type: "string" },
    pad: { type: "boolean", default: false },
    "byte-fallback": { type: "boolean", default: false },
    "output-dir": { type: "string" },
    force: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.base || !values.add || !values["output-dir"]) {
    throw new UsageError("--base, --add and --output-dir are required");
  }
  const dir = values["output-dir"].replace(/\/+$/, "") || "/";
  checkInputPath(values.base, "file", "--base");
  checkInputPath(values.add, "file", "--add");
  const outStat = statOrUndefined(dir);
  if (outStat && !outStat.isDirectory) {
    throw new UserError(`Cannot write to "${dir}": it is a file, not a folder`, "--output-dir expects a folder");
  }
  const base = readSentencePieceModel(Deno.readFileSync(values.base), values.base);
  const add = readSentencePieceModel(Deno.readFileSync(values.add), values.add);
  const merged = extendVocabulary(base, add, { pad: values.pad, byteFallback: values["byte-fallback"] });
  tokenizerFromSentencePiece(merged); // validates the result (duplicate pieces, byte pieces, …)
  const files: Record<string, Uint8Array<ArrayBuffer>> = { "tokenizer.model": writeSentencePieceModel(merged) };
  for (const [name, text] of Object.entries(huggingFaceTokenizerFiles({ pad: values.pad }))) {
    files[name] = new TextEncoder().encode(text);
  }
  Deno.mkdirSync(dir, { recursive: true });
  if (!values.force) {
    const existing = Object.keys(files).filter((name) => exists(`${dir}/${name}`));
    if (existing.length) {
      throw new UserError(
        `Cannot write to "${dir}": ${existing.map((e) => `"${e}"`).join(", ")} already exist(s)`,
        "pass --force to overwrite, or choose another --output-dir",
      );
    }
  }
  for (const [name, bytes] of Object.entries(files)) {
    await writeFileAtomic(`${dir}/${name}`, (sink) => sink.write(bytes));
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", files["tokenizer.model"]));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  console.log(
    `${base.pieces.length} base pieces + ${merged.pieces.length - base.pieces.length} added = ` +
      `${merged.pieces.length} pieces`,
  );
  console.log(`wrote ${dir}/tokenizer.model (sha256 ${hex}), tokenizer_config.json, special_tokens_map.json`);
  return 0;
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
