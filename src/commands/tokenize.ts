/**
 * `tokenize --tokenizer FILE [--no-bos] [--eos] [--pieces] TEXT|-`: prints the ids (JSON array) or pieces of TEXT
 * (stdin when `-`). `tokenize --compare A B TEXT|-`: shows where two tokenizers differ and explains the usual
 * 32,000 / 49,953 / 49,954 vocabulary sizes. FILE: anything the shared loader reads (_tokenizer_loader.ts).
 */
import { UsageError } from "../core/errors.ts";
import type { Tokenizer } from "../tokenizer/mod.ts";
import { parseFlags } from "./_args.ts";
import { KNOWN_VOCAB_SIZES, loadTokenizerFile } from "./_tokenizer_loader.ts";

const USAGE = `usage: tokenize --tokenizer FILE [--no-bos] [--eos] [--pieces] TEXT|-
       tokenize --compare A B TEXT|-

Tokenizes TEXT (read from stdin when TEXT is "-") and prints a JSON array of token ids, or of pieces with
--pieces. BOS is prepended by default, as llama.cpp and Hugging Face do.

  --tokenizer FILE  a SentencePiece tokenizer.model, a GGUF model/vocab file with tokenizer.ggml.* metadata,
                    a llama2.c tokenizer.bin, or a folder holding tokenizer.model
  --no-bos          do not prepend BOS (then the ids equal SentencePiece's encode())
  --eos             append EOS
  --pieces          print pieces instead of ids
  --compare A B     tokenize TEXT with both tokenizers, show where they differ and what each vocabulary is
  -h, --help`;

async function readText(arg: string | undefined): Promise<string> {
  if (arg === undefined) throw new UsageError("missing TEXT (use - to read stdin)");
  if (arg !== "-") return arg;
  return await new Response(Deno.stdin.readable).text();
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    tokenizer: { type: "string" },
    bos: { type: "boolean", default: true },
    eos: { type: "boolean", default: false },
    pieces: { type: "boolean", default: false },
    compare: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.compare) {
    if (positionals.length !== 3) throw new UsageError("--compare takes two tokenizer files and TEXT");
    const [a, b, t] = positionals;
    const text = await readText(t);
    console.log(
      compareReport(
        a,
        await loadTokenizerFile(a, "--compare"),
        b,
        await loadTokenizerFile(b, "--compare"),
        text,
        values.bos!,
      ),
    );
    return 0;
  }
  if (!values.tokenizer) throw new UsageError("missing --tokenizer FILE");
  if (positionals.length !== 1) throw new UsageError(`expected one TEXT argument, got ${positionals.length}`);
  const tok = await loadTokenizerFile(values.tokenizer, "--tokenizer");
  const text = await readText(positionals[0]);
  const ids = tok.encode(text, { bos: values.bos, eos: values.eos });
  console.log(JSON.stringify(values.pieces ? ids.map((id) => tok.pieceOf(id)) : ids));
  return 0;
}

function describe(path: string, tok: Tokenizer): string {
  const known = KNOWN_VOCAB_SIZES[tok.vocabSize];
  return `${path}: ${tok.vocabSize} pieces, ${tok.model.toUpperCase()}${tok.byteFallback ? ", byte fallback" : ""}` +
    (known ? ` (${known})` : "");
}

/** The --compare report: vocabularies, their shared prefix, and the two tokenizations side by side. */
export function compareReport(pathA: string, a: Tokenizer, pathB: string, b: Tokenizer, text: string, bos = true) {
  const lines = [`A ${describe(pathA, a)}`, `B ${describe(pathB, b)}`];
  const n = Math.min(a.vocabSize, b.vocabSize);
  let shared = 0;
  while (shared < n && a.pieceOf(shared) === b.pieceOf(shared)) shared++;
  lines.push(`the first ${shared} pieces are identical (same ids)`);
  const longer = a.vocabSize > b.vocabSize ? ["A", a] as const : ["B", b] as const;
  if (shared === n && a.vocabSize !== b.vocabSize) {
    const extra = longer[1].vocabSize - n;
    const sample = Array.from(
      { length: Math.min(extra, 5) },
      (_, i) => `${n + i} ${JSON.stringify(longer[1].pieceOf(n + i))}`,
    );
    lines.push(`${longer[0]} extends the other by ${extra} piece(s): ${sample.join(", ")}${extra > 5 ? ", …" : ""}`);
    if (extra === 1 && longer[1].pieceOf(n) === "[PAD]") {
      lines.push(
        "the only difference is [PAD] (Chinese-Alpaca); text tokenizes the same, but a model's embedding rows " +
          "must match its own tokenizer: use the 49,954 tokenizer with Alpaca models and the 49,953 one with LLaMA",
      );
    }
  }
  if (shared < n) {
    lines.push(
      `piece ${shared} differs: A ${JSON.stringify(a.pieceOf(shared))} vs B ${JSON.stringify(b.pieceOf(shared))}`,
    );
  }
  if (a.vocabSize === 32000 || b.vocabSize === 32000) {
    lines.push(
      "a 32,000-piece tokenizer cannot drive a Chinese-LLaMA/Alpaca model (ids ≥ 32000 are its Chinese pieces), and " +
        "the Chinese tokenizers must not be used with original LLaMA weights",
    );
  }
  const ia = a.encode(text, { bos }), ib = b.encode(text, { bos });
  let first = 0;
  while (first < ia.length && first < ib.length && ia[first] === ib[first]) first++;
  lines.push(`tokens: A ${ia.length}, B ${ib.length}`);
  if (first === ia.length && first === ib.length) lines.push("identical ids for this text");
  else {
    lines.push(`first difference at token ${first}:`);
    const show = (t: Tokenizer, ids: number[]) =>
      ids.slice(first, first + 12).map((id) => `${id}:${JSON.stringify(t.pieceOf(id))}`).join(" ");
    lines.push(`  A ${show(a, ia)}`, `  B ${show(b, ib)}`);
  }
  lines.push(`A ids ${JSON.stringify(ia)}`, `B ids ${JSON.stringify(ib)}`);
  return lines.join("\n");
}
