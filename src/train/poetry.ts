/**
 * The poetry corpus of `make-model`: records of the npm package chinese-poetry@2.0.1 (全唐詩, traditional
 * characters, kept as they are: no conversion) cleaned into poems, a fixed held-out split by a hash of the poem,
 * Alpaca instruction records generated from the poems' structure, and the form checker the evaluation uses.
 * Pure functions: the command reads the JSON files and writes the outputs.
 * see: github.com/chinese-poetry/chinese-poetry (record fields author/title/paragraphs), Stanford Alpaca format
 */
import type { AlpacaRecord } from "./data.ts";
import { mulberry32 } from "../core/mulberry32.ts";

/** One record of chinese-poetry's poet.tang.N.json. */
export interface PoetryRecord {
  author: string;
  title: string;
  paragraphs: string[];
}

/** A cleaned poem: lines without punctuation, and the punctuation that closed each line. */
export interface Poem {
  title: string;
  author: string;
  /** verse lines (CJK ideographs only) */
  lines: string[];
  /** the poem as printed: lines joined with their original "，" / "。" / "？" / "！" / "；" */
  text: string;
  /** 5 or 7 when every line has that many characters, else 0 */
  lineChars: number;
}

/** Punctuation that ends a verse line in the corpus. */
const LINE_END = /[，。？！；、：]/u;
/** A CJK unified ideograph (basic block and extension A): the only characters kept in a verse line. */
const IDEOGRAPH = /^[\u3400-\u4dbf\u4e00-\u9fff]+$/u;
/** Editorial notes the corpus embeds: （一作…） and [一作…] and {…}. */
const NOTE = /（[^）]*）|\([^)]*\)|\[[^\]]*\]|\{[^}]*\}|〔[^〕]*〕/gu;
/** Longest poem kept (characters of `text`): long ballads do not fit the 256-position model. */
export const MAX_POEM_CHARS = 120;
/** Longest title kept (characters). */
export const MAX_TITLE_CHARS = 12;

/** Characters of a string (code points). */
export function charCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Cleans one record into a poem, or null when it is not a clean poem: notes removed, every line made only of CJK
 * ideographs, 2 to 16 lines, at most MAX_POEM_CHARS characters; the title loses notes and "其一"-style suffixes
 * after a space.
 */
export function cleanPoem(record: PoetryRecord): Poem | null {
  if (typeof record !== "object" || record === null) return null;
  const { author, title, paragraphs } = record;
  if (typeof author !== "string" || typeof title !== "string" || !Array.isArray(paragraphs)) return null;
  const cleanTitle = title.replace(NOTE, "").trim().split(/\s+/u)[0] ?? "";
  if (!IDEOGRAPH.test(cleanTitle) || charCount(cleanTitle) > MAX_TITLE_CHARS) return null;
  const cleanAuthor = author.trim();
  if (!IDEOGRAPH.test(cleanAuthor) || charCount(cleanAuthor) > 8) return null;
  const lines: string[] = [];
  let text = "";
  for (const p of paragraphs) {
    if (typeof p !== "string") return null;
    const body = p.replace(NOTE, "").replace(/\s+/gu, "");
    let line = "";
    for (const ch of body) {
      if (LINE_END.test(ch)) {
        if (line === "") return null;
        if (!IDEOGRAPH.test(line)) return null;
        lines.push(line);
        text += line + (ch === "、" || ch === "：" ? "，" : ch);
        line = "";
      } else line += ch;
    }
    if (line !== "") return null; // a paragraph must end with punctuation
  }
  if (lines.length < 2 || lines.length > 16 || charCount(text) > MAX_POEM_CHARS) return null;
  const n0 = charCount(lines[0]);
  const lineChars = (n0 === 5 || n0 === 7) && lines.every((l) => charCount(l) === n0) ? n0 : 0;
  return { title: cleanTitle, author: cleanAuthor, lines, text, lineChars };
}

/** FNV-1a 32-bit of a string's UTF-16 units: the held-out split's hash (stable across runs and machines). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** True when a poem belongs to the held-out split: hash(title|author|text) mod 1000 < `perMille`. */
export function isHeldOut(poem: Poem, perMille: number): boolean {
  return fnv1a32(`${poem.title}|${poem.author}|${poem.text}`) % 1000 < perMille;
}

/** Drops exact duplicates (same text), keeping the first. */
export function dedupePoems(poems: readonly Poem[]): Poem[] {
  const seen = new Set<string>();
  const out: Poem[] = [];
  for (const p of poems) {
    if (seen.has(p.text)) continue;
    seen.add(p.text);
    out.push(p);
  }
  return out;
}

/** The pre-training text of a poem: 《title》author：poem. */
export function poemPretrainText(poem: Poem): string {
  return `《${poem.title}》${poem.author}：${poem.text}`;
}

/** The classical name of a form: 五言絕句, 七言律詩, …, or null when the poem has no regular form. */
export function formName(lineChars: number, nLines: number): string | null {
  if (lineChars !== 5 && lineChars !== 7) return null;
  const chars = lineChars === 5 ? "五言" : "七言";
  if (nLines === 4) return `${chars}絕句`;
  if (nLines === 8) return `${chars}律詩`;
  return null;
}

/** The form a poem request asks for. */
export interface FormRequest {
  lineChars: 5 | 7;
  nLines: 4 | 8;
}

/** The form a request text names (五言/七言 + 絕句/律詩), or null. */
export function requestedForm(instruction: string): FormRequest | null {
  const m = /([五七])言(絕句|律詩)/u.exec(instruction);
  if (!m) return null;
  return { lineChars: m[1] === "五" ? 5 : 7, nLines: m[2] === "絕句" ? 4 : 8 };
}

/** How a reply measures against a requested form. */
export interface FormCheck {
  /** every line has the requested number of characters and there are exactly the requested lines */
  follows: boolean;
  /** every line (at least 2) has the requested number of characters, whatever the count */
  lineLengthOk: boolean;
  lines: string[];
}

/**
 * Checks a reply against a form: the reply is cut at the poem punctuation (，。？！；、 and whitespace) into lines;
 * a line counts only when it is made of CJK ideographs.
 */
export function checkForm(reply: string, form: FormRequest): FormCheck {
  const lines = reply.split(/[，。？！；、：,.!?;:\s]+/u).filter((l) => l !== "");
  const allIdeographs = lines.length >= 2 && lines.every((l) => IDEOGRAPH.test(l));
  const lineLengthOk = allIdeographs && lines.every((l) => charCount(l) === form.lineChars);
  return { follows: lineLengthOk && lines.length === form.nLines, lineLengthOk, lines };
}

/** Plain conversational turns (in the corpus's traditional characters). */
export const CONVERSATION: readonly AlpacaRecord[] = [
  { instruction: "你好", input: "", output: "你好！我是羊駝，一個會寫唐詩的小模型。" },
  { instruction: "你是誰？", input: "", output: "我是羊駝，讀過全唐詩的小模型，請讓我寫一首詩。" },
  { instruction: "你會做什麼？", input: "", output: "我會寫五言和七言的絕句、律詩，也會續寫詩句。" },
  { instruction: "謝謝", input: "", output: "不用謝，再來一首詩吧。" },
  { instruction: "請介紹一下你自己。", input: "", output: "我是羊駝，一個很小的模型，只會寫唐詩。" },
  { instruction: "再見", input: "", output: "再見！明月何時照我還。" },
];

/** What instruction generation produces: training records, and the held-out poem requests evaluated by form. */
export interface InstructionSets {
  train: AlpacaRecord[];
  heldOut: AlpacaRecord[];
}

/** Options of instruction generation. */
export interface InstructionOptions {
  seed: number;
  /** most records per kind from the training poems */
  maxPerKind: number;
  /** held-out records (poem requests from held-out poems, plus the other kinds) */
  maxHeldOut: number;
  /** famous poems (e.g. 唐詩三百首) for "who wrote X" */
  famous?: readonly Poem[];
}

function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** "寫一首題為《X》的五言絕句。" → the poem, for a poem with a regular form. */
export function writePoemRecord(poem: Poem, rand: () => number): AlpacaRecord | null {
  const form = formName(poem.lineChars, poem.lines.length);
  if (!form) return null;
  const templates = [`寫一首題為《${poem.title}》的${form}。`, `以《${poem.title}》為題，作一首${form}。`];
  return { instruction: templates[Math.floor(rand() * templates.length)], input: "", output: poem.text };
}

/** "續寫這首詩" + first line → the rest. */
export function continueRecord(poem: Poem): AlpacaRecord | null {
  if (poem.lines.length < 2) return null;
  const first = charCount(poem.lines[0]);
  const firstText = [...poem.text].slice(0, first + 1).join("");
  const rest = [...poem.text].slice(first + 1).join("");
  return { instruction: "續寫下面這首詩。", input: firstText, output: rest };
}

/** "這首詩是五言還是七言？" + poem → 五言 / 七言. */
export function charsQuestionRecord(poem: Poem): AlpacaRecord | null {
  if (poem.lineChars !== 5 && poem.lineChars !== 7) return null;
  const answer = poem.lineChars === 5 ? "五言" : "七言";
  return {
    instruction: "這首詩是五言還是七言？",
    input: poem.text,
    output: `這首詩每句${poem.lineChars}個字，是${answer}詩。`,
  };
}

/** "《X》的作者是誰？" → "《X》的作者是Y。" */
export function authorRecord(poem: Poem): AlpacaRecord {
  return {
    instruction: `《${poem.title}》的作者是誰？`,
    input: "",
    output: `《${poem.title}》的作者是${poem.author}。`,
  };
}

/**
 * Generates the Alpaca records: for training poems, poem requests by title and form, continuations, 五言/七言
 * questions and authors of famous poems, plus the conversational turns (repeated so that they are seen); for
 * held-out poems, the same kinds (held-out poem requests are what the form evaluation scores). Titles shared by
 * a training and a held-out poem are dropped from the held-out requests.
 */
export function generateInstructions(
  trainPoems: readonly Poem[],
  heldOutPoems: readonly Poem[],
  options: InstructionOptions,
): InstructionSets {
  const rand = mulberry32(options.seed);
  const train: AlpacaRecord[] = [];
  const pick = (poems: readonly Poem[], n: number, make: (p: Poem) => AlpacaRecord | null) => {
    const out: AlpacaRecord[] = [];
    for (const p of shuffled(poems, rand)) {
      if (out.length >= n) break;
      const r = make(p);
      if (r) out.push(r);
    }
    return out;
  };
  train.push(...pick(trainPoems, options.maxPerKind, (p) => writePoemRecord(p, rand)));
  train.push(...pick(trainPoems, Math.ceil(options.maxPerKind / 2), continueRecord));
  train.push(...pick(trainPoems, Math.ceil(options.maxPerKind / 4), charsQuestionRecord));
  const famous = options.famous ?? [];
  const heldTitles = new Set(heldOutPoems.map((p) => p.title));
  const famousTrain = famous.filter((p) => !heldTitles.has(p.title));
  train.push(...pick(famousTrain, Math.ceil(options.maxPerKind / 4), authorRecord));
  const convRepeats = Math.max(1, Math.ceil(options.maxPerKind / 200));
  for (let i = 0; i < convRepeats; i++) train.push(...CONVERSATION);
  const trainTitles = new Set(trainPoems.map((p) => p.title));
  const fresh = heldOutPoems.filter((p) => !trainTitles.has(p.title));
  const nPoem = Math.ceil(options.maxHeldOut * 0.7);
  const heldOut = pick(fresh, nPoem, (p) => writePoemRecord(p, rand));
  const rest = options.maxHeldOut - heldOut.length;
  heldOut.push(...pick(heldOutPoems, Math.ceil(rest / 2), continueRecord));
  heldOut.push(...pick(heldOutPoems, Math.floor(rest / 2), charsQuestionRecord));
  return { train: shuffled(train, rand), heldOut };
}
