/**
 * yangtuo command line: a command table with lazy imports and the one error boundary.
 * Errors print `error: …` (and `hint: …` when we know the fix) and exit 1; usage errors exit 2.
 *
 * @example
 * ```sh
 * deno run --allow-read cli.ts inspect model.gguf --json
 * ```
 */
import { FormatError, UnsupportedError, UsageError, UserError } from "./src/core/errors.ts";

/** A subcommand: a one-line summary and a lazy loader of its `run(args)`. */
interface Command {
  summary: string;
  load: () => Promise<{ run: (args: string[]) => Promise<number | void> }>;
}

const COMMANDS: Record<string, Command> = {
  inspect: {
    summary: "describe a model file or folder (format, config, vocab, tensors)",
    load: () => import("./src/commands/inspect.ts"),
  },
  tokenize: {
    summary: "tokenize text with a tokenizer.model or GGUF; --compare A B",
    load: () => import("./src/commands/tokenize.ts"),
  },
  "train-tokenizer": {
    summary: "train a SentencePiece model (spm_train's flags; BPE identical to spm_train)",
    load: () => import("./src/commands/train_tokenizer.ts"),
  },
  "merge-tokenizer": {
    summary: "extend a SentencePiece tokenizer with another's pieces",
    load: () => import("./src/commands/merge_tokenizer.ts"),
  },
  merge: {
    summary: "merge base weights with LoRA(s) and write gguf / huggingface / pth",
    load: () => import("./src/commands/merge.ts"),
  },
  quantize: { summary: "quantize a GGUF to q4_0 / q8_0 / f16", load: () => import("./src/commands/quantize.ts") },
  convert: {
    summary: "convert a base model (HF, Meta pth, llama2.c, GGUF) to GGUF F16/F32",
    load: () => import("./src/commands/convert.ts"),
  },
  generate: { summary: "one-shot completion from a prompt", load: () => import("./src/commands/generate.ts") },
  perplexity: { summary: "perplexity of a model over a text file", load: () => import("./src/commands/perplexity.ts") },
  chat: { summary: "Alpaca instruction chat in the terminal", load: () => import("./src/commands/chat.ts") },
  serve: {
    summary: "OpenAI-compatible API server with continuous batching and a chat page",
    load: () => import("./src/commands/serve.ts"),
  },
  pretrain: {
    summary: "pre-train: stage 1 (embeddings) or stage 2 (LoRA) → PEFT folder",
    load: () => import("./src/commands/pretrain.ts"),
  },
  sft: { summary: "instruction fine-tuning on Alpaca JSON → PEFT folder", load: () => import("./src/commands/sft.ts") },
  demo: {
    summary:
      "first run: the shipped Chinese model (vocabulary, quantize, a chat turn); --random: the pipeline on random weights",
    load: () => import("./src/commands/demo.ts"),
  },
  web: {
    summary: "serve the in-browser chat page on loopback (the model runs in the browser)",
    load: () => import("./src/commands/web.ts"),
  },
  "make-model": {
    summary: "make the default model: babyllama105 + 全唐詩 → tokenizer, pretrain, sft, merge, GGUF",
    load: () => import("./src/commands/make_model.ts"),
  },
  compare: {
    summary: "same prompts through 2+ models → side-by-side Markdown table with timings",
    load: () => import("./src/commands/compare.ts"),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    "yangtuo (羊驼): Chinese-LLaMA-Alpaca in Deno — tokenizer, merge, quantize, chat",
    "",
    "usage: deno task <command> [args]   (or: deno run <permissions> cli.ts <command> [args])",
    "",
    "commands:",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
    "",
    "Run `<command> --help` for its flags.",
  ].join("\n");
}

/** Runs the CLI with `args`; returns the exit code. Never throws. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`error: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    const mod = await command.load();
    return (await mod.run(rest)) ?? 0;
  } catch (e) {
    return reportError(e);
  }
}

/** Prints `error:` / `hint:` for `e` and returns the exit code (2 for usage errors, else 1). */
export function reportError(e: unknown): number {
  if (e instanceof UsageError) {
    console.error(`error: ${e.message}\nhint: run with --help to see the flags`);
    return 2;
  }
  if (e instanceof UserError) {
    console.error(`error: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ""}`);
    return 1;
  }
  if (e instanceof FormatError || e instanceof UnsupportedError) {
    console.error(`error: ${e.message}`);
    return 1;
  }
  if (e instanceof Deno.errors.NotFound) {
    console.error(`error: ${e.message}\nhint: check the path`);
    return 1;
  }
  if (e instanceof Deno.errors.NotCapable) {
    console.error(`error: ${e.message}\nhint: this task runs with scoped permissions (see deno.json)`);
    return 1;
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    console.error(`error: ${e.message}\nhint: the operating system refused access: check the file's permissions`);
    return 1;
  }
  if (e instanceof Error) {
    console.error(`error: ${e.message}`);
    if (debugEnabled()) console.error(e.stack);
    return 1;
  }
  console.error(`error: ${String(e)}`);
  return 1;
}

/** YANGTUO_DEBUG set (and readable: a task without that env permission must not fail inside the error boundary). */
function debugEnabled(): boolean {
  try {
    return !!Deno.env.get("YANGTUO_DEBUG");
  } catch {
    return false;
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
