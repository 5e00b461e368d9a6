/**
 * `chat`: the seed's `./main -m MODEL --color -f prompts/alpaca.txt -ins -c 2048 --temp 0.2 -n 256
 * --repeat_penalty 1.3`, in Deno. Loads the model, then drops every permission it no longer needs (read included),
 * so the conversation runs unable to read other files, write, spawn or open sockets.
 * see: src/chat (templates, session, repl), llama.cpp examples/main/main.cpp @ 3525899
 */
import { UsageError, UserError } from "../core/errors.ts";
import { ALPACA, getTemplate, templateForModel, TEMPLATES } from "../chat/templates.ts";
import { ChatSession } from "../chat/session.ts";
import { runRepl } from "../chat/repl.ts";
import { ggufChatTemplate } from "../tokenizer/mod.ts";
import { Sampler } from "../sampling/sampler.ts";
import { intFlag, parseFlags } from "./_args.ts";
import {
  CHAT_DEFAULTS,
  CONTEXT_FLAGS,
  parseSamplingFlags,
  SAMPLING_FLAGS,
  type SamplingSettings,
  samplingUsage,
  withNegativeValues,
} from "./_sampling_flags.ts";
import { openEngine } from "./_engine_open.ts";
import { DEFAULT_MODEL_CHAT, DEFAULT_MODEL_PATH } from "./_default_model.ts";

const USAGE = `usage: deno task chat [-m MODEL.gguf] [options]

With no -m, chat uses the shipped default model, models/yangtuo-poetry/yangtuo-poetry-q8_0.gguf (a tiny classical
Chinese poetry Alpaca made by \`deno task make-model\`; try 寫一首題為《春夜》的五言絕句。), with its own settings:
template ${DEFAULT_MODEL_CHAT.template}, -c ${DEFAULT_MODEL_CHAT.contextSize}, -n ${DEFAULT_MODEL_CHAT.maxNewTokens}, \
--temp ${DEFAULT_MODEL_CHAT.temperature}, --repeat-penalty ${DEFAULT_MODEL_CHAT.repeatPenalty} (flags still override them).

Chat with an Alpaca-style model in the terminal (the seed's \`./main -ins\`). As llama.cpp -ins did, each turn
is BOS "\\n\\n### Instruction:\\n\\n" + your text + "\\n" + "\\n\\n### Response:\\n\\n", after the preamble (-f),
which stays in the context when it fills (the older half of the conversation is dropped).
Piped stdin: every line is an instruction and only the replies are printed.

options:
  -m, --model PATH          GGUF model (f32 / f16 / q4_0 / q8_0); default: the shipped yangtuo-poetry
  -f, --file PATH           preamble (prompt file); default: llama.cpp prompts/alpaca.txt text
  -b, --batch-size N        tokens per evaluation while reading input (default 64)
      --ignore-eos          never end a reply at EOS (llama.cpp --ignore-eos)
      --template NAME       ${
  [...TEMPLATES.keys()].join(" | ")
} (default: the model's own, from its GGUF chat template, else alpaca)
      --color               color your input and the model's text apart
  -h, --help                show this help

${samplingUsage(CHAT_DEFAULTS)}
-ins / -i / --instruct are accepted and ignored (instruction mode is what chat does).

In the chat: Ctrl+C stops a reply; Ctrl+C at the prompt or Ctrl+D exits; a line ending in \\ continues on the
next line; /reset forgets the conversation; /help; /exit.

permissions: \`deno task chat\` grants read, env and cpu/memory info only (no write, no network, no subprocess);
after loading, chat also revokes read, so only the already open model file stays readable.`;

const FLAGS = {
  model: { type: "string", short: "m" },
  file: { type: "string", short: "f" },
  ...SAMPLING_FLAGS,
  ...CONTEXT_FLAGS,
  "batch-size": { type: "string", short: "b" },
  batch_size: { type: "string" },
  template: { type: "string" },
  color: { type: "boolean" },
  "ignore-eos": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Flags llama.cpp users pass that mean "instruction mode" — which chat always is. */
const IGNORED = new Set(["-ins", "--instruct", "-i", "--interactive", "--interactive-first"]);

/** The chat settings parsed from the command line (sampling and context through the shared option table). */
export interface ChatArgs extends SamplingSettings {
  model: string;
  promptFile?: string;
  batchSize: number;
  /** A template name, or undefined for the one the model's metadata names (else alpaca). */
  template?: string;
  /** true when no -m was given and the shipped default model is used */
  defaultModel: boolean;
  color: boolean;
  ignoreEos: boolean;
}

/** Parses chat's flags (throws UsageError); returns null for --help. */
export function parseChatArgs(args: string[]): ChatArgs | null {
  const { values: v, positionals } = parseFlags(withNegativeValues(args.filter((a) => !IGNORED.has(a)), FLAGS), FLAGS);
  if (v.help) return null;
  const given = v.model ?? positionals[0];
  if (positionals.length > (v.model === undefined ? 1 : 0)) {
    throw new UsageError(`unexpected argument "${positionals.at(-1)}"`);
  }
  // no model given: the shipped default model, with the settings it was made for
  const model = given ?? DEFAULT_MODEL_PATH;
  const defaults = given === undefined ? DEFAULT_MODEL_CHAT : CHAT_DEFAULTS;
  // undefined: the model's own (its GGUF chat template), else alpaca
  const template = v.template ?? (given === undefined ? DEFAULT_MODEL_CHAT.template : undefined);
  if (template !== undefined && !TEMPLATES.has(template)) {
    throw new UsageError(`--template expects one of ${[...TEMPLATES.keys()].join(", ")}, got "${template}"`);
  }
  return {
    ...parseSamplingFlags(v, defaults),
    model,
    defaultModel: given === undefined,
    promptFile: v.file,
    batchSize: intFlag(v["batch-size"] ?? v.batch_size, "--batch-size", 64, 1),
    template,
    color: v.color ?? false,
    ignoreEos: v["ignore-eos"] ?? false,
  };
}

function envFlag(name: string): boolean {
  try {
    return (Deno.env.get(name) ?? "") !== "";
  } catch {
    return false;
  }
}

/** Drops a permission for the rest of the process (no-op where the runtime refuses). */
function revoke(name: "read" | "write" | "net" | "run" | "ffi"): void {
  try {
    Deno.permissions.revokeSync({ name });
  } catch { /* nothing to revoke */ }
}

/** `chat` entry point. */
export async function run(args: string[]): Promise<number> {
  const a = parseChatArgs(args);
  if (a === null) {
    console.log(USAGE);
    return 0;
  }
  // whatever the caller granted, a chat never writes, spawns or connects: deny now so nothing can prompt for it
  for (const p of ["write", "net", "run", "ffi"] as const) revoke(p);

  let system: string | undefined;
  if (a.promptFile !== undefined) {
    try {
      system = await Deno.readTextFile(a.promptFile);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.IsADirectory) {
        throw new UserError(
          `Cannot read the prompt file "${a.promptFile}": not a file`,
          "check the path given with -f",
        );
      }
      throw e;
    }
    // llama.cpp -f dropped one trailing newline
    if (system.endsWith("\n")) system = system.slice(0, -1);
  }
  const t0 = performance.now();
  let engine;
  try {
    engine = await openEngine({ model: a.model, settings: a });
  } catch (e) {
    if (a.defaultModel && e instanceof UserError && /file not found/.test(e.message)) {
      throw new UserError(
        `Cannot open the default model "${a.model}": file not found`,
        "restore models/yangtuo-poetry from git (or run `deno task make-model`), or pass -m MODEL.gguf",
      );
    }
    throw e;
  }
  const loadMs = performance.now() - t0;
  // the model file is open (and its workers have loaded their code): nothing else needs reading
  revoke("read");

  try {
    const seed = a.seed < 0 ? (Date.now() >>> 0) % 0x7fffffff : a.seed;
    const sampler = new Sampler({
      temperature: a.temperature,
      topK: a.topK,
      topP: a.topP,
      repeatPenalty: a.repeatPenalty,
      repeatLastN: a.repeatLastN,
      seed,
    });
    const modelTemplate = a.template === undefined
      ? templateForModel(ggufChatTemplate(engine.metadata), engine.config.vocabSize)
      : undefined;
    const template = a.template !== undefined ? getTemplate(a.template) : modelTemplate ?? ALPACA;
    let session: ChatSession;
    try {
      session = new ChatSession(engine, {
        template,
        system,
        maxNewTokens: a.maxNewTokens,
        sampler,
        batchSize: a.batchSize,
        ignoreEos: a.ignoreEos,
      });
    } catch (e) {
      if (e instanceof RangeError) throw new UserError(e.message, "use a shorter prompt file (-f) or a larger -c");
      throw e;
    }
    const c = engine.config;
    const banner = [
      ...(a.defaultModel
        ? [
          "default model: yangtuo-poetry (babyllama105 + 全唐詩 via make-model; see models/yangtuo-poetry/PROVENANCE.md)",
        ]
        : []),
      `model: ${a.model} (dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize}) loaded in ${
        (loadMs / 1000).toFixed(2)
      } s`,
      `context ${engine.contextSize} tokens, preamble ${session.preambleTokens.length} tokens (kept), template ${template.name}${
        a.template !== undefined ? "" : modelTemplate ? " (the model's own)" : " (default)"
      }`,
      `sampling: temp ${a.temperature}, top-k ${a.topK}, top-p ${a.topP}, repeat-penalty ${a.repeatPenalty}, ` +
      `repeat-last-n ${a.repeatLastN}, seed ${seed}, n-predict ${a.maxNewTokens}`,
    ].join("\n");
    const interactive = Deno.stdin.isTerminal();
    if (!interactive) console.error(banner);
    return await runRepl(session, { color: a.color && !envFlag("NO_COLOR"), interactive, banner });
  } finally {
    engine.close();
  }
}
