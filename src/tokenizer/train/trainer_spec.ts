/**
 * The trainer's options, named and defaulted as spm_train's flags and SentencePiece's `TrainerSpec` /
 * `NormalizerSpec` protos, and their serialization as spm_train 0.1.97 fills them (every scalar field set, in
 * field-number order; repeated fields only when non-empty; `escape_whitespaces` left unset).
 * see: google/sentencepiece src/sentencepiece_model.proto, src/spm_train_main.cc, src/trainer_interface.cc (VerifySpec)
 */
import { MODEL_BPE, MODEL_CHAR, MODEL_UNIGRAM, MODEL_WORD } from "../../formats/sentencepiece_model.ts";
import { ProtoWriter } from "../../formats/protobuf.ts";

/** Value kinds of spec fields, as the proto declares them. */
export type SpecKind = "string" | "strings" | "int32" | "uint64" | "float" | "bool" | "model_type";

/** One spec field: flag name (= proto field name), proto field number, kind, default, help line. */
export interface SpecField {
  name: string;
  field: number;
  kind: SpecKind;
  default: string | number | boolean | string[];
  help: string;
}

/** TrainerSpec fields spm_train sets, in field-number order (the proto's defaults). */
export const TRAINER_SPEC_FIELDS: readonly SpecField[] = [
  { name: "input", field: 1, kind: "strings", default: [], help: "comma separated list of input sentences" },
  { name: "model_prefix", field: 2, kind: "string", default: "", help: "output model prefix" },
  { name: "model_type", field: 3, kind: "model_type", default: "unigram", help: "unigram, bpe, word or char" },
  { name: "vocab_size", field: 4, kind: "int32", default: 8000, help: "vocabulary size" },
  { name: "accept_language", field: 5, kind: "strings", default: [], help: "comma separated languages accepted" },
  { name: "self_test_sample_size", field: 6, kind: "int32", default: 0, help: "the size of self test samples" },
  { name: "input_format", field: 7, kind: "string", default: "", help: "input format: text or tsv (word<TAB>freq)" },
  {
    name: "character_coverage",
    field: 10,
    kind: "float",
    default: 0.9995,
    help: "character coverage to determine the minimum symbols",
  },
  {
    name: "input_sentence_size",
    field: 11,
    kind: "uint64",
    default: 0,
    help: "maximum number of sentences the trainer loads (0: all)",
  },
  { name: "seed_sentencepiece_size", field: 14, kind: "int32", default: 1000000, help: "the size of seed pieces" },
  { name: "shrinking_factor", field: 15, kind: "float", default: 0.75, help: "keeps this fraction of pieces a round" },
  {
    name: "num_threads",
    field: 16,
    kind: "int32",
    default: 16,
    help: "threads whose float sums unigram reproduces (workers: ≤ cores)",
  },
  { name: "num_sub_iterations", field: 17, kind: "int32", default: 2, help: "number of EM sub-iterations" },
  { name: "max_sentence_length", field: 18, kind: "int32", default: 4192, help: "maximum sentence length in bytes" },
  {
    name: "shuffle_input_sentence",
    field: 19,
    kind: "bool",
    default: true,
    help: "sample input sentences at random (seeded) when --input_sentence_size > 0",
  },
  { name: "max_sentencepiece_length", field: 20, kind: "int32", default: 16, help: "maximum piece length (chars)" },
  { name: "split_by_unicode_script", field: 21, kind: "bool", default: true, help: "split pieces by Unicode script" },
  { name: "split_by_whitespace", field: 22, kind: "bool", default: true, help: "split pieces at whitespace" },
  { name: "split_by_number", field: 23, kind: "bool", default: true, help: "split pieces at numbers (0-9)" },
  {
    name: "treat_whitespace_as_suffix",
    field: 24,
    kind: "bool",
    default: false,
    help: "whitespace marker as suffix instead of prefix",
  },
  { name: "split_digits", field: 25, kind: "bool", default: false, help: "split all digits into separate pieces" },
  {
    name: "allow_whitespace_only_pieces",
    field: 26,
    kind: "bool",
    default: false,
    help: "allow pieces of only (consecutive) whitespace",
  },
  { name: "control_symbols", field: 30, kind: "strings", default: [], help: "comma separated control symbols" },
  {
    name: "user_defined_symbols",
    field: 31,
    kind: "strings",
    default: [],
    help: "comma separated user defined symbols",
  },
  {
    name: "vocabulary_output_piece_score",
    field: 32,
    kind: "bool",
    default: true,
    help: "write scores in PREFIX.vocab",
  },
  { name: "hard_vocab_limit", field: 33, kind: "bool", default: true, help: "false: --vocab_size is a soft limit" },
  { name: "use_all_vocab", field: 34, kind: "bool", default: false, help: "use all tokens (word/char models)" },
  { name: "byte_fallback", field: 35, kind: "bool", default: false, help: "unknown characters as UTF-8 byte pieces" },
  {
    name: "required_chars",
    field: 36,
    kind: "string",
    default: "",
    help: "characters always in the alphabet regardless of coverage",
  },
  { name: "unk_id", field: 40, kind: "int32", default: 0, help: "id of <unk>" },
  { name: "bos_id", field: 41, kind: "int32", default: 1, help: "id of <s> (-1 disables)" },
  { name: "eos_id", field: 42, kind: "int32", default: 2, help: "id of </s> (-1 disables)" },
  { name: "pad_id", field: 43, kind: "int32", default: -1, help: "id of <pad> (-1 disables)" },
  { name: "unk_surface", field: 44, kind: "string", default: " \u2047 ", help: "surface of <unk> when decoding" },
  { name: "unk_piece", field: 45, kind: "string", default: "<unk>", help: "the UNK piece" },
  { name: "bos_piece", field: 46, kind: "string", default: "<s>", help: "the BOS piece" },
  { name: "eos_piece", field: 47, kind: "string", default: "</s>", help: "the EOS piece" },
  { name: "pad_piece", field: 48, kind: "string", default: "<pad>", help: "the PAD piece" },
  {
    name: "train_extremely_large_corpus",
    field: 49,
    kind: "bool",
    default: false,
    help: "recorded only (float64 unigram counts are always used here)",
  },
  {
    name: "enable_differential_privacy",
    field: 50,
    kind: "bool",
    default: false,
    help: "not supported (must be false)",
  },
  {
    name: "differential_privacy_noise_level",
    field: 51,
    kind: "float",
    default: 0,
    help: "not supported (recorded only)",
  },
  {
    name: "differential_privacy_clipping_threshold",
    field: 52,
    kind: "uint64",
    default: 0,
    help: "not supported (recorded only)",
  },
];

/** NormalizerSpec fields spm_train sets (`name` is the --normalization_rule_name flag). */
export const NORMALIZER_SPEC_FIELDS: readonly SpecField[] = [
  {
    name: "normalization_rule_name",
    field: 1,
    kind: "string",
    default: "nmt_nfkc",
    help: "normalization rule: nmt_nfkc or identity",
  },
  { name: "add_dummy_prefix", field: 3, kind: "bool", default: true, help: "add a dummy whitespace at the start" },
  {
    name: "remove_extra_whitespaces",
    field: 4,
    kind: "bool",
    default: true,
    help: "remove leading, trailing and duplicate whitespace",
  },
  { name: "normalization_rule_tsv", field: 6, kind: "string", default: "", help: "not supported (must be empty)" },
];

/** The normalizer_spec field numbers of the values the trainer fills in itself. */
const NORMALIZER_CHARSMAP_FIELD = 2;

/** All options by flag name (snake_case, as spm_train spells them). */
export type TrainerOptions = Record<string, string | number | boolean | string[]>;

/** The options with every field at its default. */
export function defaultTrainerOptions(): TrainerOptions {
  const o: TrainerOptions = {};
  for (const f of [...TRAINER_SPEC_FIELDS, ...NORMALIZER_SPEC_FIELDS]) {
    o[f.name] = Array.isArray(f.default) ? [...f.default] : f.default;
  }
  return o;
}

/** Model type names (lowercase, as --model_type takes them) to TrainerSpec.ModelType numbers. */
export const MODEL_TYPES: Record<string, number> = {
  unigram: MODEL_UNIGRAM,
  bpe: MODEL_BPE,
  word: MODEL_WORD,
  char: MODEL_CHAR,
};

/** The typed view of the options that the trainer reads. */
export interface TrainerConfig {
  modelType: "unigram" | "bpe" | "word" | "char";
  vocabSize: number;
  characterCoverage: number;
  inputSentenceSize: number;
  shuffleInputSentence: boolean;
  seedSentencepieceSize: number;
  shrinkingFactor: number;
  numSubIterations: number;
  /** SentencePiece's thread count: the unigram trainer reproduces its per-thread float sums (sentence i → i mod n). */
  numThreads: number;
  maxSentenceLength: number;
  maxSentencepieceLength: number;
  splitByUnicodeScript: boolean;
  splitByWhitespace: boolean;
  splitByNumber: boolean;
  treatWhitespaceAsSuffix: boolean;
  splitDigits: boolean;
  allowWhitespaceOnlyPieces: boolean;
  controlSymbols: string[];
  userDefinedSymbols: string[];
  byteFallback: boolean;
  requiredChars: string;
  hardVocabLimit: boolean;
  useAllVocab: boolean;
  vocabularyOutputPieceScore: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  inputFormat: string;
  normalizationRuleName: string;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
}

/**
 * Validates the options as SentencePiece's VerifySpec does and returns the typed view. Throws RangeError naming the
 * flag for out-of-range values and TypeError for unsupported combinations.
 */
export function trainerConfig(o: TrainerOptions): TrainerConfig {
  const num = (k: string) => o[k] as number;
  const bool = (k: string) => o[k] as boolean;
  const str = (k: string) => o[k] as string;
  const range = (k: string, lo: number, hi: number) => {
    const v = num(k);
    if (!(v >= lo && v <= hi)) throw new RangeError(`Cannot train: --${k} must be in [${lo}, ${hi}], got ${v}`);
  };
  const modelType = str("model_type").toLowerCase();
  if (!(modelType in MODEL_TYPES)) {
    throw new RangeError(`Cannot train: --model_type must be unigram, bpe, word or char, got "${str("model_type")}"`);
  }
  if (!(num("vocab_size") > 0)) {
    throw new RangeError(`Cannot train: --vocab_size must be > 0, got ${num("vocab_size")}`);
  }
  if ((modelType === "unigram" || modelType === "bpe") && bool("use_all_vocab")) {
    throw new RangeError("Cannot train: --use_all_vocab=true is valid for word/char models only");
  }
  range("character_coverage", 0.98, 1.0);
  range("max_sentencepiece_length", 1, 512);
  range("num_sub_iterations", 1, 10);
  range("num_threads", 1, 128);
  range("self_test_sample_size", 0, 1000);
  range("shrinking_factor", 0.5, 0.95);
  range("max_sentence_length", 10, 1073741824);
  const iss = num("input_sentence_size");
  if (!(iss <= 0 || iss > 100)) throw new RangeError(`Cannot train: --input_sentence_size must be 0 or > 100`);
  for (const k of ["unk_piece", "bos_piece", "eos_piece", "pad_piece"]) {
    if (str(k) === "") throw new RangeError(`Cannot train: --${k} must not be empty`);
  }
  const fmt = str("input_format");
  if (fmt !== "" && fmt !== "text" && fmt !== "tsv") {
    throw new RangeError(`Cannot train: --input_format must be text or tsv, got "${fmt}"`);
  }
  if (bool("enable_differential_privacy")) throw new RangeError("Cannot train: differential privacy is not supported");
  if (str("normalization_rule_tsv") !== "") {
    throw new RangeError("Cannot train: --normalization_rule_tsv is not supported (use --normalization_rule_name)");
  }
  const rule = str("normalization_rule_name");
  if (rule !== "nmt_nfkc" && rule !== "identity") {
    throw new RangeError(`Cannot train: --normalization_rule_name "${rule}" is not supported (nmt_nfkc or identity)`);
  }
  if ((o.self_test_sample_size as number) > 0) {
    throw new RangeError("Cannot train: --self_test_sample_size > 0 is not supported");
  }
  return {
    modelType: modelType as TrainerConfig["modelType"],
    vocabSize: num("vocab_size"),
    characterCoverage: num("character_coverage"),
    inputSentenceSize: iss,
    shuffleInputSentence: bool("shuffle_input_sentence"),
    seedSentencepieceSize: num("seed_sentencepiece_size"),
    shrinkingFactor: num("shrinking_factor"),
    numSubIterations: num("num_sub_iterations"),
    numThreads: num("num_threads"),
    maxSentenceLength: num("max_sentence_length"),
    maxSentencepieceLength: num("max_sentencepiece_length"),
    splitByUnicodeScript: bool("split_by_unicode_script"),
    splitByWhitespace: bool("split_by_whitespace"),
    splitByNumber: bool("split_by_number"),
    treatWhitespaceAsSuffix: bool("treat_whitespace_as_suffix"),
    splitDigits: bool("split_digits"),
    allowWhitespaceOnlyPieces: bool("allow_whitespace_only_pieces"),
    controlSymbols: o.control_symbols as string[],
    userDefinedSymbols: o.user_defined_symbols as string[],
    byteFallback: bool("byte_fallback"),
    requiredChars: str("required_chars"),
    hardVocabLimit: bool("hard_vocab_limit"),
    useAllVocab: bool("use_all_vocab"),
    vocabularyOutputPieceScore: bool("vocabulary_output_piece_score"),
    unkId: num("unk_id"),
    bosId: num("bos_id"),
    eosId: num("eos_id"),
    padId: num("pad_id"),
    unkPiece: str("unk_piece"),
    bosPiece: str("bos_piece"),
    eosPiece: str("eos_piece"),
    padPiece: str("pad_piece"),
    inputFormat: fmt,
    normalizationRuleName: rule,
    addDummyPrefix: bool("add_dummy_prefix"),
    removeExtraWhitespaces: bool("remove_extra_whitespaces"),
  };
}

function writeField(w: ProtoWriter, f: SpecField, v: TrainerOptions[string]): void {
  switch (f.kind) {
    case "string":
      w.string(f.field, v as string);
      break;
    case "strings":
      for (const s of v as string[]) w.string(f.field, s);
      break;
    case "int32":
      w.int32(f.field, v as number);
      break;
    case "uint64":
      w.uint64(f.field, v as number);
      break;
    case "float":
      w.float32(f.field, v as number);
      break;
    case "bool":
      w.bool(f.field, v as boolean);
      break;
    case "model_type":
      w.int32(f.field, MODEL_TYPES[(v as string).toLowerCase()]);
      break;
  }
}

/**
 * TrainerSpec message bytes as spm_train writes them. `vocabSize` overrides --vocab_size (SentencePiece stores the
 * real piece count when hard_vocab_limit is false).
 */
export function trainerSpecBytes(o: TrainerOptions, vocabSize?: number): Uint8Array {
  const w = new ProtoWriter();
  for (const f of TRAINER_SPEC_FIELDS) {
    const v = f.name === "vocab_size" && vocabSize !== undefined ? vocabSize : o[f.name];
    writeField(w, f, v);
  }
  return w.finish();
}

/** NormalizerSpec message bytes as spm_train writes them (`charsmap` empty for identity). */
export function normalizerSpecBytes(o: TrainerOptions, charsmap: Uint8Array): Uint8Array {
  const w = new ProtoWriter();
  for (const f of NORMALIZER_SPEC_FIELDS) {
    writeField(w, f, o[f.name]);
    if (f.field === 1) w.bytes(NORMALIZER_CHARSMAP_FIELD, charsmap);
  }
  return w.finish();
}
