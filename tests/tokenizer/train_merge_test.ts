/**
 * The seed's pipeline end to end: train a Chinese SentencePiece model with train-tokenizer, extend LLaMA's
 * tokenizer.model with it (merge-tokenizer, as merge_tokenizers.py), and check with the oracle spm_encode 0.1.97 that
 * SentencePiece loads the merged tokenizer and encodes held-out text exactly as our Tokenizer does. LLaMA's model is
 * from ../shared/data (see its PROVENANCE.md); skips when it or spm_train is absent.
 */
import { assert, assertEquals } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { run as trainTokenizer } from "../../src/commands/train_tokenizer.ts";
import { run as mergeTokenizer } from "../../src/commands/merge_tokenizer.ts";
import { readSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import { tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";
import { chineseCorpus } from "./_train_corpus.ts";
import { hasSpmEncode, hasSpmTrain, spmEncodeIds } from "./_spm_oracle.ts";

const LLAMA = "models/tokenizers/llama/tokenizer.model";

for (const modelType of ["unigram", "bpe"]) {
  Deno.test({
    name: `merge-tokenizer LLaMA + a ${modelType} model from train-tokenizer gives a tokenizer spm_encode agrees with`,
    ignore: !hasSpmTrain() || !hasSpmEncode() || needsTestData(LLAMA).ignore,
    async fn() {
      const dir = Deno.makeTempDirSync({ prefix: "yangtuo-train-merge-" });
      try {
        const lines = chineseCorpus(7, 3000);
        Deno.writeTextFileSync(`${dir}/zh.txt`, lines.join("\n") + "\n");
        const held = [
          ...chineseCorpus(7, 3300).slice(3000),
          "白日依山尽，黄河入海流。",
          "LLaMA 模型 2023 年",
          "  a  b  ",
        ];
        Deno.writeTextFileSync(`${dir}/held.txt`, held.join("\n") + "\n");
        assertEquals(
          await trainTokenizer([
            `--input=${dir}/zh.txt`,
            `--model_prefix=${dir}/zh_sp`,
            "--vocab_size=3000",
            `--model_type=${modelType}`,
          ]),
          0,
        );
        const llama = `${testDataRoot()}/${LLAMA}`;
        assertEquals(
          await mergeTokenizer(["--base", llama, "--add", `${dir}/zh_sp.model`, "--output-dir", `${dir}/merged`]),
          0,
        );
        const merged = readSentencePieceModel(Deno.readFileSync(`${dir}/merged/tokenizer.model`));
        assert(merged.pieces.length > 32000, `merged has ${merged.pieces.length} pieces`);
        const tok = tokenizerFromSentencePiece(merged);
        const want = await spmEncodeIds(`${dir}/merged/tokenizer.model`, `${dir}/held.txt`);
        assertEquals(want.length, held.length);
        let longer = 0;
        for (let i = 0; i < held.length; i++) {
          assertEquals(tok.encode(held[i], { bos: false }), want[i], `held-out line ${i + 1}`);
          longer += want[i].some((id) => id >= 32000) ? 1 : 0;
        }
        assert(longer > held.length / 2, `only ${longer} lines use an added piece`);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  });
}
