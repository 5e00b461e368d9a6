/**
 * Training data as the seed's scripts take it: pre-training text packed into blocks as run_clm's `group_texts`
 * does, and Stanford Alpaca instruction records with the seed's prompt template and IGNORE_INDEX labels.
 * Every input is hostile: sizes are bounded and errors name the file, the record (line) and the field.
 * see: the seed's scripts/training/run_clm_pt_with_peft.py (tokenize_function, group_texts, train_test_split),
 * scripts/training/build_dataset.py (PROMPT_TEMPLATE, IGNORE_INDEX, tokenization), HF datasets "text"/"json"
 */
import { FormatError } from "../core/errors.ts";
import { Mt19937 } from "../core/mt19937.ts";

import { IGNORE_INDEX } from "./model.ts";

/** Label of a position that does not count in the loss (one home: model.ts, where the loss is computed). */
export { IGNORE_INDEX };

/** The seed's SFT prompt (build_dataset.py), `{instruction}` replaced; note the space after "Response:". */
export const ALPACA_PROMPT_TEMPLATE = "Below is an instruction that describes a task. " +
  "Write a response that appropriately completes the request.\n\n" +
  "### Instruction:\n{instruction}\n\n### Response: ";

/**
 * The SFT prompt as a Hugging Face chat template (Jinja, `tokenizer_config.json` `chat_template`), which `sft` records
 * in its adapter folder and `merge` carries into the GGUF (`tokenizer.chat_template`), so chat, serve and the web
 * page pick the prompt the model was trained with: every user turn is BOS + the template above, every assistant
 * turn its text + EOS. `\n` escapes inside the Jinja string literals are newlines when rendered.
 */
export const ALPACA_SFT_CHAT_TEMPLATE: string = "{% for message in messages %}{% if message['role'] == 'user' %}" +
  "{{ bos_token + '" +
  ALPACA_PROMPT_TEMPLATE.replaceAll("\n", "\\n").replace("{instruction}", "' + message['content'] + '") +
  "' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

/** run_clm maps `group_texts` with datasets' default batch of 1,000 examples; each batch drops its own remainder. */
export const GROUP_TEXTS_BATCH = 1000;

/** Largest data file we read (bytes): tokens are held in memory. */
export const MAX_DATA_BYTES = 1 << 30;
/** Largest single text field or line (UTF-16 units). */
export const MAX_FIELD_CHARS = 1 << 24;
/** Most records (lines or Alpaca objects) in one file. */
export const MAX_RECORDS = 50_000_000;
/** Largest block / sequence length. */
export const MAX_SEQ_LENGTH = 1 << 20;

/** The part of a tokenizer the data pipeline needs (structural, so tests can hand in a toy one). */
export interface DataTokenizer {
  /** Text → ids; `bos` prepends BOS as HF LlamaTokenizer's add_special_tokens does. */
  encode(text: string, options?: { bos?: boolean; eos?: boolean }): number[];
  readonly bosId: number;
  readonly eosId: number;
  readonly vocabSize: number;
}

function dataError(path: string, message: string): FormatError {
  return new FormatError(message, { format: "data", path });
}

function checkSize(path: string, nBytes: number): void {
  if (nBytes > MAX_DATA_BYTES) {
    throw dataError(path, `Cannot read training data: ${nBytes} bytes exceeds the limit of ${MAX_DATA_BYTES}`);
  }
}

function decodeUtf8(path: string, bytes: Uint8Array): string {
  checkSize(path, bytes.length);
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    throw dataError(path, "Cannot read training data: the file is not valid UTF-8");
  }
}

/** Lines as datasets' "text" loader yields them: split at \n, \r\n or \r; no final empty line after a newline. */
function splitLines(text: string): string[] {
  const lines = text.split(/\r\n|\n|\r/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * The texts of a pre-training file, one per example as the seed's loader gives them: each line of a `.txt`
 * (empty lines included: each becomes a lone BOS, as in run_clm), or the "text" field of each line of a
 * `.jsonl` (blank lines skipped). Throws FormatError naming the file, line and field.
 */
export function readPretrainTexts(path: string, bytes: Uint8Array): string[] {
  const text = decodeUtf8(path, bytes);
  const lines = splitLines(text);
  if (lines.length > MAX_RECORDS) {
    throw dataError(path, `Cannot read training data: ${lines.length} lines exceeds the limit of ${MAX_RECORDS}`);
  }
  const isJsonl = /\.jsonl$/i.test(path);
  if (!isJsonl && !/\.txt$/i.test(path)) {
    throw dataError(path, `Cannot read training data: expected a .txt or .jsonl file`);
  }
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.length > MAX_FIELD_CHARS) {
      throw dataError(path, `Cannot read line ${i + 1}: ${line.length} characters exceeds ${MAX_FIELD_CHARS}`);
    }
    if (!isJsonl) {
      out.push(line);
      continue;
    }
    if (line.trim() === "") continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw dataError(path, `Cannot parse line ${i + 1} as JSON: ${(e as Error).message}`);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
      throw dataError(path, `Cannot read line ${i + 1}: expected a JSON object with a "text" field`);
    }
    const t = (obj as Record<string, unknown>)["text"];
    if (typeof t !== "string") {
      throw dataError(path, `Cannot read line ${i + 1}: field "text" is ${describe(t)}, expected a string`);
    }
    out.push(t);
  }
  return out;
}

function describe(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

/** Packed pre-training blocks: `nBlocks` rows of `blockSize` token ids; labels are the ids themselves. */
export interface PackedBlocks {
  blockSize: number;
  nBlocks: number;
  /** (nBlocks, blockSize) token ids, row-major. */
  tokens: Int32Array;
  /** Tokens read in total, and the remainders dropped at the end of each group. */
  nTokens: number;
  nDropped: number;
}

/**
 * Tokenizes each text with BOS (HF `tokenizer(examples["text"])`), concatenates them in groups of
 * GROUP_TEXTS_BATCH examples and cuts each group into `blockSize` blocks, dropping the group's remainder as
 * run_clm's `group_texts`. One difference: a group shorter than one block is dropped too (run_clm keeps it as
 * a short block, which no fixed-shape batch can hold). `onProgress` receives the number of texts done.
 */
export function packPretrainBlocks(
  texts: readonly string[],
  tokenizer: DataTokenizer,
  blockSize: number,
  onProgress?: (textsDone: number) => void,
): PackedBlocks {
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize > MAX_SEQ_LENGTH) {
    throw new RangeError(`Cannot pack blocks: block size ${blockSize} is not an integer in [2, ${MAX_SEQ_LENGTH}]`);
  }
  const blocks: Int32Array[] = [];
  let nTokens = 0, nDropped = 0, nBlocksTotal = 0;
  for (let g = 0; g < texts.length; g += GROUP_TEXTS_BATCH) {
    const group: number[] = [];
    const end = Math.min(texts.length, g + GROUP_TEXTS_BATCH);
    for (let i = g; i < end; i++) {
      const ids = tokenizer.encode(texts[i], { bos: true, eos: false });
      for (let j = 0; j < ids.length; j++) group.push(ids[j]);
    }
    nTokens += group.length;
    const n = Math.floor(group.length / blockSize);
    nDropped += group.length - n * blockSize;
    if (n > 0) {
      blocks.push(Int32Array.from(group.slice(0, n * blockSize)));
      nBlocksTotal += n;
    }
    onProgress?.(end);
  }
  const tokens = new Int32Array(nBlocksTotal * blockSize);
  let o = 0;
  for (const b of blocks) {
    tokens.set(b, o);
    o += b.length;
  }
  return { blockSize, nBlocks: nBlocksTotal, tokens, nTokens, nDropped };
}

/**
 * Blocks of several files, one after another (the seed packs each file of --dataset_dir on its own and
 * concatenates the datasets: no block spans two files).
 */
export function concatPackedBlocks(parts: readonly PackedBlocks[]): PackedBlocks {
  if (parts.length === 0) throw new RangeError("Cannot concatenate blocks: no parts");
  const blockSize = parts[0].blockSize;
  if (parts.some((p) => p.blockSize !== blockSize)) {
    throw new RangeError("Cannot concatenate blocks of different sizes");
  }
  const nBlocks = parts.reduce((n, p) => n + p.nBlocks, 0);
  const tokens = new Int32Array(nBlocks * blockSize);
  let o = 0;
  for (const p of parts) {
    tokens.set(p.tokens, o);
    o += p.tokens.length;
  }
  return {
    blockSize,
    nBlocks,
    tokens,
    nTokens: parts.reduce((n, p) => n + p.nTokens, 0),
    nDropped: parts.reduce((n, p) => n + p.nDropped, 0),
  };
}

/** One Alpaca record (build_dataset.py's columns). */
export interface AlpacaRecord {
  instruction: string;
  input: string;
  output: string;
}

/**
 * Parses Stanford Alpaca data as datasets' "json" loader takes it: a JSON array of objects, or JSON lines.
 * `instruction` and `output` must be strings; `input` a string, null or missing. Throws FormatError naming the
 * file, the record (index, or line for JSON lines) and the field.
 */
export function readAlpacaRecords(path: string, bytes: Uint8Array): AlpacaRecord[] {
  const text = decodeUtf8(path, bytes);
  const trimmed = text.trimStart();
  const objects: { where: string; value: unknown }[] = [];
  if (trimmed.startsWith("[")) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      throw dataError(path, `Cannot parse Alpaca JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(arr)) throw dataError(path, "Cannot read Alpaca JSON: expected an array of records");
    if (arr.length > MAX_RECORDS) {
      throw dataError(path, `Cannot read Alpaca JSON: ${arr.length} records exceeds the limit of ${MAX_RECORDS}`);
    }
    arr.forEach((value, i) => objects.push({ where: `record ${i}`, value }));
  } else {
    const lines = splitLines(text);
    if (lines.length > MAX_RECORDS) {
      throw dataError(path, `Cannot read Alpaca JSON lines: ${lines.length} lines exceeds the limit of ${MAX_RECORDS}`);
    }
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === "") continue;
      try {
        objects.push({ where: `line ${i + 1}`, value: JSON.parse(lines[i]) });
      } catch (e) {
        throw dataError(path, `Cannot parse line ${i + 1} as JSON: ${(e as Error).message}`);
      }
    }
  }
  const out: AlpacaRecord[] = [];
  for (const { where, value } of objects) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw dataError(path, `Cannot read ${where}: expected an object with "instruction", "input", "output"`);
    }
    const o = value as Record<string, unknown>;
    const field = (name: string, optional: boolean): string => {
      const v = o[name];
      if (optional && (v === undefined || v === null)) return "";
      if (typeof v !== "string") {
        throw dataError(path, `Cannot read ${where}: field "${name}" is ${describe(v)}, expected a string`);
      }
      if (v.length > MAX_FIELD_CHARS) {
        throw dataError(
          path,
          `Cannot read ${where}: field "${name}" has ${v.length} characters (limit ${MAX_FIELD_CHARS})`,
        );
      }
      return v;
    };
    out.push({ instruction: field("instruction", false), input: field("input", true), output: field("output", false) });
  }
  return out;
}

/** The prompt of a record: the template with `instruction` (+ "\n" + `input` when there is one). */
export function alpacaPrompt(record: AlpacaRecord): string {
  const instruction = record.input !== "" ? `${record.instruction}\n${record.input}` : record.instruction;
  return ALPACA_PROMPT_TEMPLATE.replace("{instruction}", () => instruction);
}

/** One tokenized SFT example: ids and labels of equal length (labels IGNORE_INDEX on the prompt). */
export interface SftExample {
  inputIds: Int32Array;
  labels: Int32Array;
}

/**
 * Tokenizes a record as build_dataset.py: the prompt with BOS, the response without special tokens followed by
 * EOS (the seed appends the text "</s>", which LlamaTokenizer reads as the EOS id), both cut to `maxSeqLength`.
 */
export function buildSftExample(record: AlpacaRecord, tokenizer: DataTokenizer, maxSeqLength: number): SftExample {
  if (!Number.isInteger(maxSeqLength) || maxSeqLength < 2 || maxSeqLength > MAX_SEQ_LENGTH) {
    throw new RangeError(
      `Cannot build SFT example: max length ${maxSeqLength} is not an integer in [2, ${MAX_SEQ_LENGTH}]`,
    );
  }
  const source = tokenizer.encode(alpacaPrompt(record), { bos: true, eos: false });
  const target = tokenizer.encode(record.output, { bos: false, eos: false });
  target.push(tokenizer.eosId);
  const n = Math.min(maxSeqLength, source.length + target.length);
  const inputIds = new Int32Array(n), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const fromSource = i < source.length;
    inputIds[i] = fromSource ? source[i] : target[i - source.length];
    labels[i] = fromSource ? IGNORE_INDEX : target[i - source.length];
  }
  return { inputIds, labels };
}

/** Tokenized SFT data: examples with at least one trained label, and how many were skipped. */
export interface SftDataset {
  examples: SftExample[];
  /** Records whose prompt alone filled `maxSeqLength` (no response token to learn from). */
  nSkipped: number;
  nTokens: number;
}

/**
 * Tokenizes every record; a record whose prompt fills `maxSeqLength` has no label left and is skipped
 * (PyTorch would give it a NaN loss) and counted in `nSkipped`.
 */
export function buildSftDataset(
  records: readonly AlpacaRecord[],
  tokenizer: DataTokenizer,
  maxSeqLength: number,
  onProgress?: (recordsDone: number) => void,
): SftDataset {
  const examples: SftExample[] = [];
  let nSkipped = 0, nTokens = 0;
  for (let i = 0; i < records.length; i++) {
    const ex = buildSftExample(records[i], tokenizer, maxSeqLength);
    if (ex.labels.every((l) => l === IGNORE_INDEX)) nSkipped++;
    else {
      examples.push(ex);
      nTokens += ex.inputIds.length;
    }
    if ((i & 1023) === 1023) onProgress?.(i + 1);
  }
  onProgress?.(records.length);
  return { examples, nSkipped, nTokens };
}

/** A permutation of 0..n-1 by a seeded Fisher–Yates shuffle (MT19937). */
export function seededPermutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rng = new Mt19937(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * The seed passes `--validation_split_percentage` to datasets' `train_test_split(test_size=…)`, where a value
 * below 1 is a fraction (its 0.001 means 0.1 %); values from 1 up to 100 are read as percentages (run_clm's
 * original meaning). Returns the fraction in [0, 1).
 */
export function validationFraction(value: number): number {
  if (!Number.isFinite(value) || value < 0 || value >= 100) {
    throw new RangeError(`Cannot split data: validation split ${value} is not in [0, 100)`);
  }
  return value < 1 ? value : value / 100;
}

/** Indices of the train and validation examples. */
export interface DataSplit {
  train: Uint32Array;
  validation: Uint32Array;
}

/**
 * Shuffles `n` examples with `seed` and puts the first ceil(fraction·n) in validation (datasets rounds the test
 * size up), the rest in train. Throws RangeError when either side would be empty while it should not be.
 */
export function splitTrainValidation(n: number, fraction: number, seed: number): DataSplit {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`Cannot split data: fraction ${fraction} not in [0, 1)`);
  const nVal = Math.ceil(fraction * n);
  if (n - nVal < 1) {
    throw new RangeError(
      `Cannot split data: ${n} example(s) leave none for training after ${nVal} for validation`,
    );
  }
  const p = seededPermutation(n, seed ^ 0x5eed5117);
  return { validation: p.slice(0, nVal).sort(), train: p.slice(nVal).sort() };
}

/** Where the data order stands: epoch and the next position in that epoch's permutation. */
export interface DataCursor {
  epoch: number;
  position: number;
}

/**
 * The seeded training order: epoch e visits the train examples in seededPermutation(nTrain, seed + e). The
 * whole state is the cursor (two integers), so a resumed run draws exactly the batches an uninterrupted one draws.
 */
export class DataOrder {
  #perm: Uint32Array;
  #epoch: number;
  #position: number;

  constructor(readonly nTrain: number, readonly seed: number, cursor: DataCursor = { epoch: 0, position: 0 }) {
    if (!Number.isInteger(nTrain) || nTrain < 1) throw new RangeError(`Cannot order data: ${nTrain} examples`);
    if (
      !Number.isInteger(cursor.epoch) || cursor.epoch < 0 || !Number.isInteger(cursor.position) ||
      cursor.position < 0 || cursor.position > nTrain
    ) {
      throw new RangeError(`Cannot order data: cursor ${JSON.stringify(cursor)} is outside ${nTrain} examples`);
    }
    this.#epoch = cursor.epoch;
    this.#position = cursor.position;
    this.#perm = seededPermutation(nTrain, (seed + cursor.epoch) >>> 0);
  }

  /** The cursor to save (and hand back to the constructor to resume). */
  get cursor(): DataCursor {
    return { epoch: this.#epoch, position: this.#position };
  }

  /** The next `n` example indices (into the train split), crossing into the next epoch when one ends. */
  next(n: number): number[] {
    const out: number[] = [];
    while (out.length < n) {
      if (this.#position >= this.nTrain) {
        this.#epoch++;
        this.#position = 0;
        this.#perm = seededPermutation(this.nTrain, (this.seed + this.#epoch) >>> 0);
      }
      out.push(this.#perm[this.#position++]);
    }
    return out;
  }
}
