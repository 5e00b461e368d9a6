/**
 * The terminal loop of `chat`: llama.cpp `-ins` at its best — "> " prompt, streamed replies, Ctrl+C stops a reply
 * (Ctrl+C at the prompt or Ctrl+D exits), a line ending in "\" continues on the next line, /help /reset /exit,
 * optional colors; with piped stdin it reads every line as a turn and prints only the replies.
 * In a terminal, lines are read with node:readline (Deno ships it): left/right, Home/End, Up/Down history, Ctrl+W/U,
 * with wide (CJK) characters measured as two columns. The readline is closed while a reply streams, so the terminal
 * is back in cooked mode and Ctrl+C arrives as SIGINT.
 * The only chat file that touches Deno.* (stdin, stdout, stderr, SIGINT).
 * see: llama.cpp examples/main/main.cpp @ 3525899 (interactive loop, console colors); Node.js readline docs
 */
import { createInterface } from "node:readline";
import process from "node:process";
import type { ChatSession } from "./session.ts";

/** llama.cpp's console colors: prompt yellow, user input bold green, model text default. */
const COLORS = { prompt: "\x1b[33m", user: "\x1b[1m\x1b[32m", reset: "\x1b[0m", dim: "\x1b[2m" };
const NO_COLORS = { prompt: "", user: "", reset: "", dim: "" };

/** Where the REPL writes (Deno.stdout / Deno.stderr by default). */
export interface ReplWriter {
  writeSync(bytes: Uint8Array): number;
}

/** Subscribes to Ctrl+C (SIGINT by default). */
export interface InterruptSource {
  add(handler: () => void): void;
  remove(handler: () => void): void;
}

/** REPL settings; the stream and signal fields exist for tests. */
export interface ReplOptions {
  /** ANSI colors for user vs model text. */
  color?: boolean;
  /** Prompts, banner and Ctrl+C handling; default: stdin is a terminal. */
  interactive?: boolean;
  /** Lines printed to stderr before the first prompt (model, settings). */
  banner?: string;
  stdin?: ReadableStream<Uint8Array>;
  stdout?: ReplWriter;
  stderr?: ReplWriter;
  interrupts?: InterruptSource;
}

/** The text of /help. */
export const REPL_HELP: string = [
  "Type an instruction and press Enter; the model's reply streams below it.",
  "  a line ending in \\   continues the instruction on the next line",
  "  ←/→ Home/End        move in the line; Ctrl+W / Ctrl+U delete a word / to the start",
  "  ↑/↓                 earlier lines (history)",
  "  Ctrl+C              stops the current reply (at the prompt: exits)",
  "  Ctrl+D              exits",
  "  /reset              forgets the conversation (the preamble stays)",
  "  /help               shows this help",
  "  /exit               exits",
].join("\n");

const SIGINT: InterruptSource = {
  add: (h) => Deno.addSignalListener("SIGINT", h),
  remove: (h) => Deno.removeSignalListener("SIGINT", h),
};

/** Reads text lines from a byte stream (UTF-8, "\n" or "\r\n"); the last line may lack its newline. */
export class LineReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();
  #buf = "";
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next line without its newline, or null at end of input. */
  async readLine(): Promise<string | null> {
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return line.endsWith("\r") ? line.slice(0, -1) : line;
      }
      if (this.#done) {
        if (this.#buf === "") return null;
        const line = this.#buf;
        this.#buf = "";
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#done = true;
        this.#buf += this.#decoder.decode();
      } else {
        this.#buf += this.#decoder.decode(value, { stream: true });
      }
    }
  }

  /** Stops reading (a pending read would otherwise keep the process alive). */
  async cancel(): Promise<void> {
    try {
      await this.#reader.cancel();
    } catch { /* already closed */ }
  }
}

const INTERRUPTED = Symbol("interrupted");

/** Most lines kept in the Up/Down history. */
const HISTORY_SIZE = 500;

/**
 * Reads terminal lines with node:readline: a fresh interface per line (so raw mode is off between prompts), sharing
 * one history. Ctrl+C at the prompt → INTERRUPTED; Ctrl+D on an empty line → null.
 */
class TerminalLineReader {
  #history: string[] = [];

  read(prompt: string): Promise<string | null | typeof INTERRUPTED> {
    return new Promise((resolve) => {
      const rl = createInterface({
        input: process.stdin,
        output: process.stdout,
        terminal: true,
        history: [...this.#history],
        historySize: HISTORY_SIZE,
        removeHistoryDuplicates: true,
        prompt,
      });
      let done = false;
      const finish = (v: string | null | typeof INTERRUPTED) => {
        if (done) return;
        done = true;
        rl.close();
        resolve(v);
      };
      rl.on("line", (line: string) => {
        if (line.trim() !== "" && this.#history[0] !== line) {
          this.#history.unshift(line);
          this.#history.length = Math.min(this.#history.length, HISTORY_SIZE);
        }
        finish(line);
      });
      rl.on("SIGINT", () => finish(INTERRUPTED));
      rl.on("close", () => finish(null));
      rl.prompt();
    });
  }
}

/**
 * Terminal-safe text: C0 controls other than tab/newline/CR and DEL are dropped, so a model (random weights, or a
 * real one having a bad day) cannot send escape sequences to the user's terminal. Piped output stays exact.
 */
export function terminalSafe(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, "");
}

/** Runs the chat loop until /exit, Ctrl+D, end of piped input or Ctrl+C at the prompt; returns the exit code. */
export async function runRepl(session: ChatSession, options: ReplOptions = {}): Promise<number> {
  const interactive = options.interactive ?? Deno.stdin.isTerminal();
  const c = options.color ? COLORS : NO_COLORS;
  const stdout = options.stdout ?? Deno.stdout;
  const stderr = options.stderr ?? Deno.stderr;
  const interrupts = options.interrupts ?? SIGINT;
  const enc = new TextEncoder();
  const write = (w: ReplWriter, s: string) => {
    const bytes = enc.encode(s);
    for (let off = 0; off < bytes.length;) off += w.writeSync(bytes.subarray(off));
  };
  const out = (s: string) => write(stdout, s);
  const info = (s: string) => write(stderr, `${s}\n`);
  // line editing and history when the real stdin is a terminal; injected streams and pipes read plain lines
  const terminal = interactive && options.stdin === undefined && Deno.stdin.isTerminal()
    ? new TerminalLineReader()
    : null;
  const lines = terminal ? null : new LineReader(options.stdin ?? Deno.stdin.readable);

  // Ctrl+C: stops the reply in progress, or (at the prompt) ends the session
  let replying: AbortController | null = null;
  let atPrompt: (() => void) | null = null;
  let startAbort: AbortController | null = new AbortController();
  const onInterrupt = () => {
    if (startAbort) startAbort.abort();
    else if (replying) replying.abort();
    else atPrompt?.();
  };
  if (interactive) interrupts.add(onInterrupt);

  const readTurn = async (prompt: string): Promise<string | null | typeof INTERRUPTED> => {
    const interrupted = new Promise<typeof INTERRUPTED>((resolve) => atPrompt = () => resolve(INTERRUPTED));
    const parts: string[] = [];
    try {
      for (;;) {
        const next = terminal ? terminal.read(parts.length ? "" : prompt) : lines!.readLine();
        const line = await Promise.race([next, interrupted]);
        if (line === INTERRUPTED) return line;
        if (line === null) return parts.length ? parts.join("\n") : null;
        if (line.endsWith("\\")) {
          parts.push(line.slice(0, -1));
          continue;
        }
        parts.push(line);
        return parts.join("\n");
      }
    } finally {
      atPrompt = null;
    }
  };

  try {
    if (interactive) {
      if (options.banner) info(options.banner);
      info(
        "== Running in chat mode. ==\n" +
          " - Press Ctrl+C to stop a reply; Ctrl+C at the prompt or Ctrl+D exits.\n" +
          " - End a line with '\\' to continue the instruction on the next line.\n" +
          " - /help lists the commands.\n",
      );
      // llama.cpp echoed the prompt file in the prompt color
      if (session.system) out(`${c.prompt}${session.system}${c.reset}`);
    }
    await session.start(startAbort.signal);
    if (startAbort.signal.aborted) {
      if (interactive) out("\n");
      return 130;
    }
    startAbort = null;

    for (;;) {
      const prompt = `${c.reset}> ${c.user}`;
      if (interactive) out(terminal ? "\n" : `\n${prompt}`);
      const turn = await readTurn(prompt);
      if (interactive) out(c.reset);
      if (turn === INTERRUPTED || turn === null) {
        if (interactive) out("\n");
        return 0;
      }
      if (turn.trim() === "") continue;
      const command = turn.trim();
      if (command === "/exit" || command === "/quit") return 0;
      if (command === "/help") {
        if (interactive) out(REPL_HELP);
        else info(REPL_HELP);
        continue;
      }
      if (command === "/reset") {
        session.reset();
        if (interactive) out(`${c.dim}(conversation cleared; the preamble stays)${c.reset}`);
        continue;
      }
      replying = new AbortController();
      try {
        const onText = interactive ? (t: string) => out(terminalSafe(t)) : out;
        const reply = await session.respond(turn, { onText, signal: replying.signal });
        if (reply.stopReason === "interrupted" && interactive) out(`${c.dim} [stopped]${c.reset}`);
      } finally {
        replying = null;
      }
      if (!interactive) out("\n");
    }
  } finally {
    if (interactive) interrupts.remove(onInterrupt);
    await lines?.cancel();
    const s = session.stats;
    const rate = (n: number, ms: number) => (ms > 0 ? ` (${(n / (ms / 1000)).toFixed(1)} tokens/s)` : "");
    info(
      `chat: ${s.turns} turn(s); read ${s.promptTokens} tokens in ${(s.promptMs / 1000).toFixed(2)} s` +
        `${rate(s.promptTokens, s.promptMs)}; generated ${s.generatedTokens} in ${(s.generateMs / 1000).toFixed(2)} s` +
        `${rate(s.generatedTokens, s.generateMs)}; ${s.contextShifts} context shift(s)`,
    );
  }
}
