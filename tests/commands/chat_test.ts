/**
 * `cli.ts chat` end to end, the way a person uses it, on a tiny random Q4_0 model written through our GGUF writer:
 * through a pseudo-terminal (util-linux `script`), with piped stdin, and under the chat task's exact permissions.
 * Oracles: the terminal's own behaviour (Ctrl+C = SIGINT, Ctrl+D = EOF at line start), the library path
 * (ChatSession over loadEngine) for the piped transcript, and Deno's permission errors. Flags and defaults are the
 * seed README's llama.cpp line (`-c 2048 --temp 0.2 -n 256 --repeat_penalty 1.3`).
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { writeFileAtomic } from "../../src/io/atomic_file.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { randomModelSpec } from "../../fixtures/random_model.ts";
import type { LlamaConfig } from "../../src/model/config.ts";
import { parseChatArgs } from "../../src/commands/chat.ts";
import { CHAT_DEFAULTS } from "../../src/commands/_sampling_flags.ts";
import { UsageError } from "../../src/core/errors.ts";
import { loadEngine } from "../../src/model/engine.ts";
import { ChatSession } from "../../src/chat/session.ts";
import { ALPACA_SYSTEM } from "../../src/chat/templates.ts";
import { Sampler } from "../../src/sampling/sampler.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;

/** The permission flags of a deno.json task (`deno run <flags> cli.ts …`). */
function taskFlags(name: string): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks;
  const t = tasks[name];
  const command: string = typeof t === "string" ? t : t.command;
  const words = command.split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  return words.slice(2, words.indexOf("cli.ts"));
}

const CONFIG: LlamaConfig = {
  dim: 64,
  hiddenDim: 128,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 4,
  headSize: 16,
  vocabSize: 512,
  contextLength: 2048,
  normEps: 1e-5,
  ropeTheta: 10000,
};

let modelPath: Promise<string> | undefined;
/** A random Q4_0 model whose vocabulary has byte tokens but no Chinese: Chinese input falls back to bytes. */
function tinyModel(): Promise<string> {
  modelPath ??= (async () => {
    const path = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-chat-", suffix: ".gguf" });
    globalThis.addEventListener("unload", () => Deno.removeSync(path));
    await writeFileAtomic(path, (sink) => writeGguf(sink, randomModelSpec(CONFIG, { dtype: "Q4_0", seed: 11 })));
    return path;
  })();
  return modelPath;
}

Deno.test("parseChatArgs() defaults to the seed's llama.cpp settings and accepts its spellings", () => {
  const a = parseChatArgs(["-m", "m.gguf"])!;
  assertEquals(
    [a.defaultContextSize, a.maxNewTokens, a.temperature, a.repeatPenalty, a.topK, a.topP, a.repeatLastN],
    [2048, 256, 0.2, 1.3, 40, 0.95, 64],
  );
  assertEquals(CHAT_DEFAULTS.temperature, 0.2);
  // the seed README's exact command line (after ./main)
  const seed = parseChatArgs(
    "-m zh-models/7B/ggml-model-q4_0.bin --color -f prompts/alpaca.txt -ins -c 2048 --temp 0.2 -n 256 --repeat_penalty 1.3"
      .split(" "),
  )!;
  assertEquals([seed.model, seed.promptFile, seed.color], [
    "zh-models/7B/ggml-model-q4_0.bin",
    "prompts/alpaca.txt",
    true,
  ]);
  assertEquals([seed.contextSize, seed.maxNewTokens, seed.repeatPenalty], [2048, 256, 1.3]);
  assertEquals(parseChatArgs(["--help"]), null);
  // no model: the shipped default model with its own settings (template, context, no repeat penalty)
  const dflt = parseChatArgs([])!;
  assertEquals([dflt.defaultModel, dflt.template, dflt.defaultContextSize, dflt.repeatPenalty], [
    true,
    "alpaca-sft",
    256,
    1,
  ]);
  assert(dflt.model.endsWith("models/yangtuo-poetry/yangtuo-poetry-q8_0.gguf"), dflt.model);
  assertEquals(parseChatArgs(["--repeat-penalty", "1.2"])!.repeatPenalty, 1.2);
  assertEquals(parseChatArgs(["-m", "m.gguf"])!.defaultModel, false);
  assertThrows(() => parseChatArgs(["-m", "x", "--template", "nope"]), UsageError, "alpaca");
  assertThrows(() => parseChatArgs(["-m", "x", "-n", "-2"]), UsageError, "--n-predict");
  assertEquals(parseChatArgs(["-m", "x", "-n", "-1", "--seed", "-1"])!.maxNewTokens, -1);
  assertEquals(parseChatArgs(["-m", "x", "--n_predict", "-1", "--temp", "0.5"])!.temperature, 0.5);
  assertEquals(parseChatArgs(["-m", "x"])!.contextSize, undefined); // resolved against the model at load
});

Deno.test("deno task chat grants no write, network, subprocess or FFI permission", () => {
  const flags = taskFlags("chat");
  for (const f of flags) {
    assert(!/^(-A|--allow-all|--allow-write|--allow-net|--allow-run|--allow-ffi|--allow-import)/.test(f), f);
  }
  assert(flags.includes("--allow-read"), "chat reads the model");
});

Deno.test("chat run with the task's permissions cannot write, connect, spawn or read other files", async () => {
  const model = await tinyModel();
  const probe = new URL("../chat/_chat_permission_probe.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...taskFlags("chat"), probe, model, `${ROOT}deno.json`],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("你好\n"));
  await w.close();
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  const last = stderr.trim().split("\n").at(-1)!;
  const outcome = JSON.parse(last);
  assertEquals(outcome.code, 0, stderr);
  for (const k of ["write", "net", "listen", "run", "readOther", "readModelAgain"]) {
    assertEquals(outcome[k], "NotCapable", `${k}: ${stderr}`);
  }
  // revoked: Deno reports a revoked permission as "prompt" (or "denied"), never "granted"; the task's --no-prompt
  // makes "prompt" fail at once (the pseudo-terminal test below proves nothing asks the user)
  for (const state of [outcome.writeState, outcome.netState, outcome.readState]) {
    assert(state === "prompt" || state === "denied", `state ${state}: ${stderr}`);
  }
  assert(taskFlags("chat").includes("--no-prompt"), "the chat task must not be able to prompt");
  assert(new TextDecoder().decode(out.stdout).length > 0, "the chat replied");
});

Deno.test("chat with piped stdin answers every line and prints exactly the library's replies", async () => {
  const model = await tinyModel();
  const turns = ["你好，请介绍一下北京。", "再说一遍 \\", "in English"];
  // a prompt file as llama.cpp's prompts/alpaca.txt: the default preamble plus one newline, which -f drops
  const promptFile = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-prompt-", suffix: ".txt" });
  await Deno.writeTextFile(promptFile, `${ALPACA_SYSTEM}\n`);
  const flags = ["-m", model, "-f", promptFile, "-n", "24", "--seed", "5", "-t", "2", "-c", "256"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...taskFlags("chat"), CLI, "chat", ...flags],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(turns.join("\n") + "\n"));
  await w.close();
  const out = await child.output();
  await Deno.remove(promptFile);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  assertStringIncludes(stderr, "chat: 2 turn(s)");
  // -f dropped the file's final newline: the preamble is exactly the default one
  assertStringIncludes(stderr, `preamble ${await preambleLength(model)} tokens`);

  // the same conversation through the library
  const engine = await loadEngine(model, { threads: 1, contextSize: 256 });
  try {
    const session = new ChatSession(engine, {
      maxNewTokens: 24,
      sampler: new Sampler({ ...samplerDefaults(), seed: 5 }),
    });
    let expected = "";
    expected += (await session.respond(turns[0])).text + "\n";
    expected += (await session.respond("再说一遍 \nin English")).text + "\n";
    assertEquals(stdout, expected);
  } finally {
    engine.close();
  }
});

async function preambleLength(model: string): Promise<number> {
  const engine = await loadEngine(model, { threads: 1, contextSize: 256 });
  try {
    return new ChatSession(engine, {}).preambleTokens.length;
  } finally {
    engine.close();
  }
}

function samplerDefaults() {
  const d = CHAT_DEFAULTS;
  return {
    temperature: d.temperature,
    topK: d.topK,
    topP: d.topP,
    repeatPenalty: d.repeatPenalty,
    repeatLastN: d.repeatLastN,
  };
}

/** `script` from util-linux runs a command in a pseudo-terminal; null when it is missing (or BSD's, off Linux). */
function scriptPath(): string | null {
  if (Deno.build.os !== "linux") return null;
  for (const p of ["/usr/bin/script", "/bin/script"]) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return null;
}

const SCRIPT = scriptPath();
if (!SCRIPT) console.warn("skip: util-linux `script` (Linux) not found; the pseudo-terminal chat test needs it");

Deno.test({
  name: "chat in a terminal: two turns, Ctrl+C stops a reply and the session goes on, Ctrl+D exits",
  ignore: !SCRIPT,
  fn: async () => {
    const model = await tinyModel();
    const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const cmd = [Deno.execPath(), "run", ...taskFlags("chat"), CLI, "chat", "-m", model, "-n", "-1", "--ignore-eos"]
      .concat(["--seed", "9", "-t", "1", "-c", "192", "--color"]).map(quote).join(" ");
    // `script` runs the command through $SHELL -c (or /bin/sh when SHELL is unset, as in CI); `exec` makes chat the
    // terminal's only foreground process, else dash dies of the first Ctrl+C and `script -e` reports its 130
    const shellCmd = `exec ${cmd}`;
    const child = new Deno.Command(SCRIPT!, {
      args: ["-qefc", shellCmd, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { TERM: "xterm", NO_COLOR: "" }, // CI exports NO_COLOR=1; chat treats "" as unset
    }).spawn();
    const keys = child.stdin.getWriter();
    const type = (s: string) => keys.write(new TextEncoder().encode(s));
    let screen = "";
    let exited = false;
    child.status.then(() => exited = true);
    const reading = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stdout) screen += dec.decode(chunk, { stream: true });
    })();
    const waitFor = async (what: string, cond: () => boolean, timeoutMs = 30000) => {
      const t0 = Date.now();
      while (!cond()) {
        if (exited) throw new Error(`chat exited while waiting for ${what}; screen:\n${screen}`);
        if (Date.now() - t0 > timeoutMs) {
          throw new Error(`timed out waiting for ${what}; screen:\n${JSON.stringify(screen.slice(-600))}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const PROMPT = "> \x1b[1m\x1b[32m"; // the prompt, then the user color (llama.cpp's bold green)
    const prompts = () => screen.split(PROMPT).length - 1;
    try {
      await waitFor("the first prompt", () => prompts() === 1);
      assertStringIncludes(screen, "\x1b[33mBelow is an instruction"); // the preamble, in the prompt color
      await type("你好\r");
      let mark = screen.length;
      await waitFor("the reply to stream", () => screen.length > mark + 200);
      await type("\x03");
      await waitFor("the prompt after Ctrl+C", () => prompts() === 2);
      assertStringIncludes(screen.slice(mark), "[stopped]");
      await type("第二个问题\r");
      mark = screen.length;
      await waitFor("the second reply", () => screen.length > mark + 200);
      await type("\x03");
      await waitFor("the third prompt", () => prompts() === 3);
      await type("\x04");
      const status = await child.status;
      assertEquals(status.code, 0, screen);
      // the long replies overflowed -c 192 and the chat went on
      const shifts = /(\d+) context shift\(s\)/.exec(screen);
      assert(shifts && Number(shifts[1]) > 0, `expected a context shift:\n${screen.slice(-400)}`);
    } finally {
      try {
        await keys.close();
      } catch { /* closed */ }
      try {
        child.kill();
      } catch { /* exited */ }
      await reading;
    }
  },
});

Deno.test({
  name: "chat in a terminal with the task's permissions: anything revoked fails at once instead of prompting",
  ignore: !SCRIPT,
  fn: async () => {
    const model = await tinyModel();
    const probe = new URL("../chat/_chat_permission_probe.ts", import.meta.url).pathname;
    const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const cmd = [Deno.execPath(), "run", ...taskFlags("chat"), probe, model, `${ROOT}deno.json`].map(quote).join(" ");
    const child = new Deno.Command(SCRIPT!, {
      args: ["-qefc", `exec ${cmd}`, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { TERM: "xterm", NO_COLOR: "1" },
    }).spawn();
    const keys = child.stdin.getWriter();
    let screen = "";
    const reading = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stdout) screen += dec.decode(chunk, { stream: true });
    })();
    const t0 = Date.now();
    const waitFor = async (cond: () => boolean, what: string) => {
      while (!cond()) {
        // a permission prompt waits for an answer for ever: that is the failure this test exists for
        if (/Allow\?|Deno requests/.test(screen)) throw new Error(`a revoked permission prompted:\n${screen}`);
        if (Date.now() - t0 > 60000) throw new Error(`timed out waiting for ${what}:\n${screen}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await waitFor(() => screen.includes("> "), "the prompt");
      await keys.write(new TextEncoder().encode("hi\r"));
      await waitFor(() => screen.split("> ").length > 2, "the second prompt");
      await keys.write(new TextEncoder().encode("\x04"));
      await waitFor(() => /\{"code".*\}/.test(screen), "the probe's outcome");
      const outcome = JSON.parse(/\{"code".*\}/.exec(screen)![0]);
      for (const k of ["write", "net", "listen", "run", "readOther", "readModelAgain"]) {
        assertEquals(outcome[k], "NotCapable", `${k}: ${screen}`);
      }
    } finally {
      try {
        await keys.close();
      } catch { /* closed */ }
      try {
        child.kill();
      } catch { /* exited */ }
      await reading;
      await child.status;
    }
  },
});

Deno.test({
  name: "chat in a terminal edits lines: arrows, Home/End, history, Ctrl+U/W, wide Chinese characters",
  ignore: !SCRIPT,
  fn: async () => {
    const model = await tinyModel();
    const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const cmd = [Deno.execPath(), "run", ...taskFlags("chat"), CLI, "chat", "-m", model, "-n", "4", "-t", "1"]
      .concat(["--color"]).map(quote).join(" ");
    const child = new Deno.Command(SCRIPT!, {
      args: ["-qefc", `exec ${cmd}`, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { TERM: "xterm", NO_COLOR: "" },
    }).spawn();
    const keys = child.stdin.getWriter();
    const type = (s: string) => keys.write(new TextEncoder().encode(s));
    let screen = "";
    let exited = false;
    child.status.then(() => exited = true);
    const reading = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stdout) screen += dec.decode(chunk, { stream: true });
    })();
    const waitFor = async (what: string, cond: () => boolean, timeoutMs = 30000) => {
      const t0 = Date.now();
      while (!cond()) {
        if (exited) throw new Error(`chat exited while waiting for ${what}; screen:\n${JSON.stringify(screen)}`);
        if (Date.now() - t0 > timeoutMs) {
          throw new Error(`timed out waiting for ${what}; screen:\n${JSON.stringify(screen.slice(-600))}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    // the prompt as readline draws it: "> " in the user color, then (maybe) an absolute cursor column
    // deno-lint-ignore no-control-regex
    const atPrompt = () => /> \x1b\[1m\x1b\[32m(\x1b\[\d+G)?$/.test(screen);
    const HELP = "Type an instruction and press Enter";
    const helps = () => screen.split(HELP).length - 1;
    const LEFT = "\x1b[D", UP = "\x1b[A", HOME = "\x1b[H", END = "\x1b[F", CTRL_U = "\x15", CTRL_W = "\x17";
    // each line is typed, then Enter; the effect of "/help" (the help text) proves what the line was
    const line = async (keystrokes: string[], expectHelps: number, what: string) => {
      await waitFor(`the prompt before ${what}`, atPrompt);
      for (const k of keystrokes) {
        await type(k);
        await new Promise((r) => setTimeout(r, 30));
      }
      await type("\r");
      await waitFor(what, () => helps() === expectHelps);
    };
    try {
      await line(["/hlp", LEFT, LEFT, "e"], 1, "left arrow + insert");
      await line([UP], 2, "Up recalls the last line");
      await line(["junk", CTRL_U, "/help"], 3, "Ctrl+U kills the line");
      await line(["/help more", CTRL_W], 4, "Ctrl+W deletes the last word");
      await line(["help", HOME, "/", END, "  "], 5, "Home/End");
      // wide characters: one Left over 好 moves the cursor two columns back
      await waitFor("the prompt", atPrompt);
      await type("你好");
      await new Promise((r) => setTimeout(r, 100));
      const mark = screen.length;
      await type(LEFT);
      await waitFor("the cursor to move", () => screen.length > mark);
      assertStringIncludes(screen.slice(mark), "\x1b[2D");
      await type(END + CTRL_U); // Ctrl+U kills left of the cursor: go to the end first
      await type("/exit\r");
      for (const t0 = Date.now(); !exited && Date.now() - t0 < 30000;) await new Promise((r) => setTimeout(r, 20));
      assert(exited, `chat did not exit after /exit:\n${JSON.stringify(screen.slice(-400))}`);
      const status = await child.status;
      assertEquals(status.code, 0, screen);
      assert(!screen.includes("^[[D"), "arrow keys must not print as text");
    } finally {
      try {
        await keys.close();
      } catch { /* closed */ }
      try {
        child.kill();
      } catch { /* exited */ }
      await reading;
    }
  },
});
