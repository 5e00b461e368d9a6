/**
 * The training log: `loss.csv` (one row per optimizer step, held-out loss on evaluation steps) and a loss-curve
 * SVG drawn from the same rows (train loss as a line, held-out loss as dots). Pure strings; the command writes them.
 */

/** One logged optimizer step. */
export interface LossRow {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Tokens (non-ignored labels) in this step. */
  tokens: number;
  /** Seconds since the run began (accumulated over resumes). */
  elapsed: number;
  /** Held-out mean loss, on evaluation steps. */
  evalLoss?: number;
}

/** The CSV header line (no newline). */
export const LOSS_CSV_HEADER = "step,loss,lr,grad_norm,tokens,elapsed_s,eval_loss,eval_perplexity";

const num = (x: number) => Number.isFinite(x) ? String(x) : (Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf");

/** One CSV row (no newline); eval columns empty when the step has no held-out loss. */
export function lossCsvRow(r: LossRow): string {
  const ev = r.evalLoss === undefined ? "," : `${num(r.evalLoss)},${num(Math.exp(r.evalLoss))}`;
  return `${r.step},${num(r.loss)},${num(r.lr)},${num(r.gradNorm)},${r.tokens},${r.elapsed.toFixed(3)},${ev}`;
}

/** The whole CSV file: header and one line per row, newline-terminated. */
export function lossCsv(rows: readonly LossRow[]): string {
  return [LOSS_CSV_HEADER, ...rows.map(lossCsvRow)].join("\n") + "\n";
}

/** Options of the SVG plot. */
export interface LossSvgOptions {
  width?: number;
  height?: number;
  title?: string;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A tick label: up to 4 significant digits. */
function tick(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

/**
 * A standalone SVG of loss against step: the training loss as a polyline, the held-out loss as circles, axes
 * with 5 ticks each. Non-finite losses are left out; with no finite point the plot says "no data".
 */
export function lossSvg(rows: readonly LossRow[], options: LossSvgOptions = {}): string {
  const W = options.width ?? 640, H = options.height ?? 400;
  const L = 64, R = 16, T = 32, B = 48;
  const train = rows.filter((r) => Number.isFinite(r.loss)).map((r) => [r.step, r.loss] as const);
  const evals = rows.filter((r) => r.evalLoss !== undefined && Number.isFinite(r.evalLoss))
    .map((r) => [r.step, r.evalLoss!] as const);
  const all = [...train, ...evals];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(options.title ?? "loss")}</text>`,
  ];
  if (all.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`, "</svg>");
    return out.join("\n") + "\n";
  }
  // loops, not Math.min(...xs): a long run's rows would overflow the argument list
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of all) {
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const sx = (x: number) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = (y: number) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  const f = (v: number) => v.toFixed(1);
  out.push(
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
  );
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4;
    out.push(
      `<text x="${f(sx(xv))}" y="${H - B + 16}" text-anchor="middle">${tick(Math.round(xv))}</text>`,
      `<text x="${L - 6}" y="${f(sy(yv) + 4)}" text-anchor="end">${tick(yv)}</text>`,
      `<line x1="${L}" y1="${f(sy(yv))}" x2="${W - R}" y2="${f(sy(yv))}" stroke="#ddd"/>`,
    );
  }
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">step</text>`);
  if (train.length) {
    const pts = train.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(" ");
    out.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts}"/>`);
  }
  for (const [x, y] of evals) out.push(`<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="3" fill="#d62728"/>`);
  out.push(
    `<text x="${W - R - 4}" y="${T + 12}" text-anchor="end" fill="#1f77b4">train loss</text>`,
    `<text x="${W - R - 4}" y="${T + 28}" text-anchor="end" fill="#d62728">held-out loss</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}
