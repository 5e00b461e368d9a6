/**
 * StopStringFilter: streams text through while holding back just enough to never print a stop string
 * ("### Instruction:") or any beginning of one that may still turn into it.
 * see: llama.cpp main.cpp antiprompt check (it printed the antiprompt; we hide it)
 */

/** The result of pushing text: what may be shown now, and whether a stop string was found. */
export interface StopFilterChunk {
  /** Text safe to show. */
  text: string;
  /** True once a stop string appeared; `text` then ends right before it and later pushes are ignored. */
  stopped: boolean;
}

/**
 * Holds back the longest tail of the stream that is a prefix of some stop string.
 *
 * @example
 * ```ts
 * const f = new StopStringFilter(["### Instruction:"]);
 * f.push("Hi!\n\n##"); // { text: "Hi!\n\n", stopped: false }
 * f.push("# Instruction:\n"); // { text: "", stopped: true }
 * ```
 */
export class StopStringFilter {
  readonly stopStrings: readonly string[];
  #held = "";
  #emitted = 0;
  #stopped = false;

  constructor(stopStrings: readonly string[]) {
    this.stopStrings = stopStrings.filter((s) => s.length > 0);
  }

  /** True once a stop string was seen. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Number of UTF-16 code units shown so far (the reply's visible length). */
  get emittedLength(): number {
    return this.#emitted;
  }

  /** Adds streamed text; returns what can be shown now. */
  push(text: string): StopFilterChunk {
    if (this.#stopped) return { text: "", stopped: true };
    const buf = this.#held + text;
    let cut = -1;
    for (const s of this.stopStrings) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.#stopped = true;
      this.#held = "";
      return this.#emit(buf.slice(0, cut), true);
    }
    const keep = this.#heldTail(buf);
    this.#held = buf.slice(buf.length - keep);
    return this.#emit(buf.slice(0, buf.length - keep), false);
  }

  /** Ends the stream: returns the held-back text (a stop string's beginning that never completed). */
  flush(): string {
    const t = this.#held;
    this.#held = "";
    return this.#emit(t, this.#stopped).text;
  }

  #emit(text: string, stopped: boolean): StopFilterChunk {
    this.#emitted += text.length;
    return { text, stopped };
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of a stop string. */
  #heldTail(buf: string): number {
    let best = 0;
    for (const s of this.stopStrings) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
