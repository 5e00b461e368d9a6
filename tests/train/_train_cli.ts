/**
 * Helpers for the training command tests: a tiny generated GGUF LLaMA with an English SentencePiece vocabulary
 * embedded, running a task exactly as deno.json declares it (same permissions), and re-deriving held-out blocks
 * with the library so a merged model can be evaluated on the same data.
 */
import { BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { writeSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import { FileSource } from "../../src/io/mod.ts";
import { configFromGgufMetadata } from "../../src/model/config.ts";
import { TensorTable } from "../../src/model/weights.ts";
import { readSentencePieceModel, type Tokenizer, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";
import { demoBaseModel } from "../../src/commands/_demo_tokenizer.ts";
import { ggufVocabFromModel } from "../../src/commands/_tokenizer_bridge.ts";
import {
  packPretrainBlocks,
  readPretrainTexts,
  splitTrainValidation,
  validationFraction,
} from "../../src/train/data.ts";
import { trainBaseFromTable, type TrainBatch, Trainer } from "../../src/train/mod.ts";
import { tinyGgufFiles, type TinyModelSpec, writeTinyFiles } from "../_tiny_model.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Files of the tiny setup. */
export interface TinySetup {
  dir: string;
  gguf: string;
  tokenizer: string;
  tok: Tokenizer;
  spec: TinyModelSpec;
}

/** English text for the tiny runs: varied sentences, enough for a few hundred 32-token blocks. */
export function tinyText(lines = 400): string {
  const subjects = ["the cat", "a dog", "my friend", "the old man", "a little girl", "the bird"];
  const verbs = ["sees", "likes", "finds", "wants", "makes", "reads"];
  const objects = ["a red ball", "the big tree", "some bread", "a blue book", "the river", "a small box"];
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    out.push(
      `${subjects[i % 6]} ${verbs[(i * 7) % 6]} ${objects[(i * 5 + 1) % 6]} and ${subjects[(i + 3) % 6]} is happy.`,
    );
  }
  return out.join("\n") + "\n";
}

/** Writes the tiny GGUF (F32, tokenizer embedded), its tokenizer.model and a text file into a temp folder. */
export async function tinySetup(): Promise<TinySetup> {
  const dir = await Deno.makeTempDir({ prefix: "yangtuo-train-cli-" });
  const model = writeSentencePieceModel(demoBaseModel());
  const tok = tokenizerFromSentencePiece(readSentencePieceModel(model));
  const spec: TinyModelSpec = {
    dim: 64,
    hiddenDim: 172,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    vocabSize: tok.vocabSize,
    seed: 21,
    contextLength: 256,
  };
  await writeTinyFiles(`${dir}/base`, tinyGgufFiles(spec, { dtype: "F32", vocab: ggufVocabFromModel(model, "demo") }));
  Deno.writeFileSync(`${dir}/tokenizer.model`, model);
  Deno.writeTextFileSync(`${dir}/text.txt`, tinyText());
  return { dir, gguf: `${dir}/base/model.gguf`, tokenizer: `${dir}/tokenizer.model`, tok, spec };
}

/** The `deno run …` arguments of a deno.json task (its exact permission flags). */
export function taskArgs(task: string): string[] {
  const json = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const cmd: string = json.tasks[task].command;
  return cmd.split(/\s+/).slice(1); // drop "deno"
}

/** Runs a task with `args`; returns exit code, stdout, stderr. */
export async function runTask(
  task: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = await new Deno.Command(Deno.execPath(), {
    args: [...taskArgs(task), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", YANGTUO_PROGRESS: "0" },
  }).output();
  const d = new TextDecoder();
  return { code: p.code, stdout: d.decode(p.stdout), stderr: d.decode(p.stderr) };
}

/** loss.csv as rows of named columns. */
export function readLossCsv(path: string): Record<string, string>[] {
  const [head, ...lines] = Deno.readTextFileSync(path).trim().split("\n");
  const cols = head.split(",");
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [cols[i], v])));
}

/** The held-out blocks a pretrain run evaluates, re-derived with the library (same seed and split). */
export function heldOutBlocks(
  textPath: string,
  tok: Tokenizer,
  blockSize: number,
  validation: number,
  seed: number,
  maxEval: number,
): TrainBatch {
  const texts = readPretrainTexts(textPath, Deno.readFileSync(textPath));
  const packed = packPretrainBlocks(texts, tok, blockSize);
  const split = splitTrainValidation(packed.nBlocks, validationFraction(validation), seed);
  const idx = split.validation.slice(0, maxEval);
  const tokens = new Int32Array(idx.length * blockSize);
  idx.forEach((b, i) => tokens.set(packed.tokens.subarray(b * blockSize, (b + 1) * blockSize), i * blockSize));
  return { batch: idx.length, seqLen: blockSize, tokens, labels: tokens.slice() };
}

/** Mean held-out loss of a (merged) GGUF model on `batch`, with no adapter: the model `merge` produced. */
export function evalMergedGguf(path: string, batch: TrainBatch): number {
  const src = new BytesSource(Deno.readFileSync(path), path);
  const gguf = readGguf(src);
  const embd = gguf.tensors.find((t) => t.name === "token_embd.weight");
  const config = configFromGgufMetadata(gguf.metadata, embd?.shape[0]);
  const table = new TensorTable({ metadata: gguf.metadata, tensors: gguf.tensors, source: src }, config);
  // stage 1 with lr 0 is the frozen model (its trainable copies of embeddings/head hold the file's values)
  const t = new Trainer(trainBaseFromTable(table), { mode: "stage1", lr: 0, maxSteps: 1 });
  return t.evalLoss(batch).loss;
}

/** name → bytes of every tensor of a GGUF file. */
export function ggufTensorBytes(path: string): Map<string, Uint8Array> {
  using src = new FileSource(path);
  const g = readGguf(src);
  return new Map(g.tensors.map((t) => [t.name, src.read(t.byteOffset, t.nBytes).slice()]));
}
