/**
 * Debian's spm_train / spm_encode (SentencePiece 0.1.97) as the oracle of the trainer tests: run them in a temp
 * folder and read back what they wrote. Tests skip with a message when /usr/bin/spm_train is absent.
 */

/** True when spm_train can run (prints a skip message once otherwise). */
export function hasSpmTrain(): boolean {
  try {
    Deno.statSync("/usr/bin/spm_train");
    return true;
  } catch {
    if (!warned) console.warn("skip: /usr/bin/spm_train not found (apt-get install sentencepiece)");
    warned = true;
    return false;
  }
}
let warned = false;

/**
 * Runs spm_train with `args`; returns its .model bytes, .vocab text and its log (stderr). Throws with the log's end on
 * failure.
 */
export async function spmTrain(
  prefix: string,
  args: string[],
): Promise<{ model: Uint8Array; vocab: string; log: string }> {
  const out = await new Deno.Command("/usr/bin/spm_train", { args: [...args, `--model_prefix=${prefix}`] }).output();
  const log = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) {
    throw new Error(`spm_train ${args.join(" ")} failed:\n${log.trim().split("\n").slice(-3).join("\n")}`);
  }
  return { model: Deno.readFileSync(`${prefix}.model`), vocab: Deno.readTextFileSync(`${prefix}.vocab`), log };
}

/** Encodes `inputFile` with spm_encode (one line of ids per input line). */
export async function spmEncodeIds(model: string, inputFile: string): Promise<number[][]> {
  const out = await new Deno.Command("/usr/bin/spm_encode", {
    args: [`--model=${model}`, "--output_format=id", `--input=${inputFile}`],
  }).output();
  if (out.code !== 0) throw new Error(`spm_encode failed: ${new TextDecoder().decode(out.stderr)}`);
  const text = new TextDecoder().decode(out.stdout);
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines.map((l) => l.trim() === "" ? [] : l.trim().split(" ").map(Number));
}

/** True when spm_encode can run. */
export function hasSpmEncode(): boolean {
  try {
    Deno.statSync("/usr/bin/spm_encode");
    return true;
  } catch {
    console.warn("skip: /usr/bin/spm_encode not found (apt-get install sentencepiece)");
    return false;
  }
}
