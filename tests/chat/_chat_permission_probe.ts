/**
 * Probe for tests/commands/chat_test.ts: runs the `chat` command in this process (started with the chat task's
 * exact permission flags), then tries what a chat must never do and prints the outcomes as JSON on stderr's last
 * line. Usage: deno run <chat task flags> _chat_permission_probe.ts MODEL OTHER_FILE  (stdin: the chat input)
 */
import { main } from "../../cli.ts";

const [model, other] = Deno.args;
const code = await main(["chat", "-m", model, "-n", "4", "--seed", "1", "-t", "2", "--temp", "0"]);

async function attempt(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return "allowed";
  } catch (e) {
    return (e as Error).name;
  }
}

const outcome = {
  code,
  write: await attempt(() => Deno.writeTextFile("/tmp/yangtuo-chat-probe-must-not-exist.txt", "x")),
  net: await attempt(async () => (await Deno.connect({ hostname: "127.0.0.1", port: 9 })).close()),
  listen: await attempt(() => Promise.resolve(Deno.listen({ hostname: "127.0.0.1", port: 0 }).close())),
  run: await attempt(() => new Deno.Command("true").output()),
  readOther: await attempt(() => Deno.readTextFile(other)),
  readModelAgain: await attempt(() => Deno.readFile(model)),
  writeState: Deno.permissions.querySync({ name: "write" }).state,
  netState: Deno.permissions.querySync({ name: "net" }).state,
  readState: Deno.permissions.querySync({ name: "read" }).state,
};
console.error(JSON.stringify(outcome));
