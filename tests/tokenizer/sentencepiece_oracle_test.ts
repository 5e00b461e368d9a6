/**
 * Differential test against SentencePiece's own C++ library through /usr/bin/python3 + Debian's
 * python3-sentencepiece (skipped with a message when `import sentencepiece` fails): seeded random Unicode texts on
 * all six models, ids of encode() and text of decode() must be identical. The committed goldens remain the files in
 * ../shared/data; this only widens coverage (charsmap normalization, unknown runs, whitespace rules).
 */
import { assertEquals } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { readSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import { tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";
import { normalizationTexts, randomTexts } from "./_random_text.ts";

const MODELS = [
  "models/tokenizers/llama/tokenizer.model",
  "models/tokenizers/chinese_sp/chinese_sp.model",
  "models/tokenizers/chinese-llama/tokenizer.model",
  "models/tokenizers/chinese-alpaca/tokenizer.model",
  "models/tokenizers/chinese-llama2/tokenizer.model",
  "models/babyllama105/tok105.model",
];
const CASES = Number(Deno.env.get("YANGTUO_PROPERTY_CASES") ?? 300);

const SCRIPT = `
import json, sys
import sentencepiece as spm
req = json.load(sys.stdin)
out = {}
for path in req["models"]:
    sp = spm.SentencePieceProcessor(model_file=path)
    ids = [sp.encode(t) for t in req["texts"]]
    out[path] = {"ids": ids, "decoded": [sp.decode(i) for i in ids]}
json.dump(out, sys.stdout)
`;

async function runSentencePiece(
  models: string[],
  texts: string[],
): Promise<Record<string, { ids: number[][]; decoded: string[] }> | undefined> {
  let child;
  try {
    child = new Deno.Command("/usr/bin/python3", {
      args: ["-c", SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
  } catch (e) {
    console.warn(`skip: cannot run /usr/bin/python3 (${(e as Error).message})`);
    return undefined;
  }
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify({ models, texts })));
  await w.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    console.warn(
      `skip: python3-sentencepiece unavailable: ${new TextDecoder().decode(stderr).trim().split("\n").pop()}`,
    );
    return undefined;
  }
  return JSON.parse(new TextDecoder().decode(stdout));
}

Deno.test(`Tokenizer equals SentencePiece C++ on ${2 * CASES} seeded texts for all six models`, {
  ...needsTestData(...MODELS),
}, async () => {
  const paths = MODELS.map((m) => `${testDataRoot()}/${m}`);
  const texts = [...randomTexts(2024, CASES, 16), ...normalizationTexts(77, CASES)];
  const sp = await runSentencePiece(paths, texts);
  if (!sp) return;
  for (const path of paths) {
    const tok = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(path)));
    texts.forEach((t, i) => {
      assertEquals(tok.encode(t, { bos: false }), sp[path].ids[i], `${path} ${JSON.stringify(t)}`);
      assertEquals(tok.decode(sp[path].ids[i]), sp[path].decoded[i], `${path} decode ${JSON.stringify(t)}`);
    });
  }
});
