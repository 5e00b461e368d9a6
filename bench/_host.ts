/**
 * The host line every bench prints (on stderr) beside its numbers: CPU model and the flags that decide which
 * instructions V8 and llama.cpp can use (V8 lowers the relaxed i8 dot to one vpdpbusd only with avx_vnni; llama.cpp
 * picks AVX2 / AVX-512 VNNI / AMX builds), the load average when --allow-sys permits (how busy the host was), plus the
 * Deno and V8 versions. Linux /proc/cpuinfo, read through `cat`
 * (Deno only lets --allow-all read /proc directly, so benches need --allow-run=cat); "unknown" elsewhere.
 */

/** The flags reported, in this order. */
export const HOST_FLAGS = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"] as const;

export interface HostInfo {
  cpu: string;
  flags: Record<(typeof HOST_FLAGS)[number], boolean>;
  /** One line for humans: `host: AMD EPYC | avx2 avx512f avx512_vnni, no avx_vnni amx_int8 | Deno 2.9.6, V8 15.0` */
  line: string;
}

export function hostInfo(): HostInfo {
  let text = "";
  try {
    const out = new Deno.Command("cat", { args: ["/proc/cpuinfo"], stdout: "piped", stderr: "null" }).outputSync();
    if (out.success) text = new TextDecoder().decode(out.stdout);
  } catch { /* not Linux, or no --allow-run=cat */ }
  const cpu = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? "unknown CPU";
  const have = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? "").split(/\s+/));
  const flags = Object.fromEntries(HOST_FLAGS.map((f) => [f, have.has(f)])) as HostInfo["flags"];
  const yes = HOST_FLAGS.filter((f) => flags[f]), no = HOST_FLAGS.filter((f) => !flags[f]);
  const flagText = text
    ? `${yes.join(" ") || "none of " + HOST_FLAGS.join(" ")}${no.length ? `, no ${no.join(" ")}` : ""}`
    : "flags unknown (needs --allow-run=cat)";
  let load = "";
  try {
    load = ` | load ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`; // 1, 5, 15 min: how busy the host is
  } catch { /* no --allow-sys=loadavg */ }
  const line =
    `host: ${cpu} | ${flagText} | ${navigator.hardwareConcurrency} cores${load} | Deno ${Deno.version.deno}, ` +
    `V8 ${Deno.version.v8}`;
  return { cpu, flags, line };
}
