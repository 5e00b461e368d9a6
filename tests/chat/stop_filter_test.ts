/**
 * StopStringFilter. Oracle: the property that the shown text is the input up to (not including) the first stop
 * string, whatever the chunking, checked against String.indexOf on the whole input.
 */
import { assertEquals } from "../_assert.ts";
import { StopStringFilter } from "../../src/chat/stop_filter.ts";
import { mulberry32 } from "../_rand.ts";

function run(stops: string[], chunks: string[]): { shown: string; stopped: boolean } {
  const f = new StopStringFilter(stops);
  let shown = "";
  for (const c of chunks) {
    const r = f.push(c);
    shown += r.text;
    if (r.stopped) return { shown, stopped: true };
  }
  return { shown: shown + f.flush(), stopped: false };
}

Deno.test("StopStringFilter holds back a possible stop-string start and drops the stop string", () => {
  const f = new StopStringFilter(["### Instruction:"]);
  assertEquals(f.push("Hi!\n\n##"), { text: "Hi!\n\n", stopped: false });
  assertEquals(f.push("# Instr"), { text: "", stopped: false });
  assertEquals(f.push("uction:\n"), { text: "", stopped: true });
  assertEquals(f.push("more"), { text: "", stopped: true });
  assertEquals(f.emittedLength, 5);
});

Deno.test("StopStringFilter releases held text when it stops matching and on flush()", () => {
  const f = new StopStringFilter(["### Instruction:"]);
  assertEquals(f.push("a ##"), { text: "a ", stopped: false });
  assertEquals(f.push("x"), { text: "##x", stopped: false });
  assertEquals(f.push(" ###"), { text: " ", stopped: false });
  assertEquals(f.flush(), "###");
});

Deno.test("StopStringFilter shows the input up to the first stop string for any chunking", () => {
  const rand = mulberry32(7);
  const stops = ["### Instruction:", "[INST]"];
  const alphabet = ["#", "#", "#", " ", "I", "nstruction", ":", "[", "INST", "]", "好", "x", "\n"];
  for (let trial = 0; trial < 300; trial++) {
    let text = "";
    const n = Math.floor(rand() * 30);
    for (let i = 0; i < n; i++) text += alphabet[Math.floor(rand() * alphabet.length)];
    if (rand() < 0.3) text = text.slice(0, Math.floor(rand() * text.length)) + stops[trial % 2] + text;
    const chunks: string[] = [];
    for (let i = 0; i < text.length;) {
      const k = 1 + Math.floor(rand() * 4);
      chunks.push(text.slice(i, i + k));
      i += k;
    }
    const cut = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0), Infinity);
    const expected = cut === Infinity ? text : text.slice(0, cut);
    assertEquals(run(stops, chunks), { shown: expected, stopped: cut !== Infinity }, JSON.stringify(chunks));
  }
});
