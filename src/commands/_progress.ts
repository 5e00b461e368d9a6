/**
 * Progress bars on stderr: bytes done / total, rate and ETA, redrawn at most 8 times a second. Shown only when
 * stderr is a terminal (so test and CI logs stay clean); YANGTUO_PROGRESS=1 forces them on, =0 off.
 */

function envFlag(): string | undefined {
  try {
    return Deno.env.get("YANGTUO_PROGRESS");
  } catch {
    return undefined;
  }
}

/** True when progress bars should be drawn. */
export function progressEnabled(): boolean {
  const f = envFlag();
  if (f === "1") return true;
  if (f === "0") return false;
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** Formats a byte count: 1.23 GB, 456 MB, 12 kB. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

/** Formats seconds: 42s, 3m07s, 1h02m. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** One progress bar. */
export class Progress {
  #done = 0;
  #start = performance.now();
  #last = 0;
  #enabled: boolean;
  #enc = new TextEncoder();

  constructor(readonly label: string, readonly total: number, enabled = progressEnabled()) {
    this.#enabled = enabled && total > 0;
  }

  /** Bytes done so far. */
  get done(): number {
    return this.#done;
  }

  /** Seconds since the bar started. */
  get elapsed(): number {
    return (performance.now() - this.#start) / 1000;
  }

  /** Adds `n` units of work. */
  add(n: number): void {
    this.#done += n;
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#last < 125 && this.#done < this.total) return;
    this.#last = now;
    this.#draw();
  }

  #draw(final = false): void {
    const t = this.elapsed;
    const frac = Math.min(1, this.#done / this.total);
    const width = 24;
    const fill = Math.round(frac * width);
    const rate = t > 0 ? this.#done / t : 0;
    const eta = rate > 0 ? (this.total - this.#done) / rate : Infinity;
    const line = `${this.label} [${"#".repeat(fill)}${".".repeat(width - fill)}] ${formatBytes(this.#done)}/${
      formatBytes(this.total)
    } ${formatBytes(rate)}/s ${final ? `in ${formatDuration(t)}` : `ETA ${formatDuration(eta)}`}`;
    Deno.stderr.writeSync(this.#enc.encode(`\r\x1b[2K${line}${final ? "\n" : ""}`));
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (this.#enabled) this.#draw(true);
  }
}
