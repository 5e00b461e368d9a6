/**
 * Tests of loss.csv and the loss-curve SVG. Oracles: the CSV columns written out by hand; the SVG parsed back
 * back (polyline points inside the plot area, one dot per held-out loss).
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { LOSS_CSV_HEADER, lossCsv, lossCsvRow, lossSvg } from "../../src/train/loss_log.ts";

Deno.test("lossCsvRow() writes step, loss, lr, grad norm, tokens, time, and eval loss with its perplexity", () => {
  assertEquals(
    lossCsvRow({ step: 3, loss: 2.5, lr: 1e-4, gradNorm: 0.75, tokens: 512, elapsed: 1.23456 }),
    "3,2.5,0.0001,0.75,512,1.235,,",
  );
  assertEquals(
    lossCsvRow({ step: 4, loss: NaN, lr: 0, gradNorm: Infinity, tokens: 0, elapsed: 0, evalLoss: 0 }),
    "4,nan,0,inf,0,0.000,0,1",
  );
  const csv = lossCsv([{ step: 1, loss: 1, lr: 1, gradNorm: 1, tokens: 1, elapsed: 1 }]);
  assertEquals(csv.split("\n").length, 3);
  assert(csv.startsWith(LOSS_CSV_HEADER + "\n"));
  assertEquals(
    LOSS_CSV_HEADER.split(",").length,
    lossCsvRow({ step: 1, loss: 1, lr: 1, gradNorm: 1, tokens: 1, elapsed: 1 }).split(",").length,
  );
});

Deno.test("lossSvg() draws every finite train point in the plot area and each eval loss as a dot", () => {
  const rows = Array.from({ length: 20 }, (_, i) => ({
    step: i + 1,
    loss: 5 / (i + 1),
    lr: 1e-4,
    gradNorm: 1,
    tokens: 10,
    elapsed: i,
    evalLoss: i % 5 === 4 ? 6 / (i + 1) : undefined,
  }));
  rows[3].loss = NaN;
  const svg = lossSvg(rows, { title: "a<b", width: 640, height: 400 });
  assert(svg.startsWith("<svg ") && svg.trimEnd().endsWith("</svg>"));
  assertStringIncludes(svg, "a&lt;b");
  const pts = /points="([^"]+)"/.exec(svg)![1].split(" ").map((p) => p.split(",").map(Number));
  assertEquals(pts.length, 19);
  for (const [x, y] of pts) assert(x >= 64 && x <= 624 && y >= 32 && y <= 352, `${x},${y} outside`);
  assertEquals((svg.match(/<circle /g) ?? []).length, 4);
  // higher loss is drawn higher (smaller y)
  assert(pts[0][1] < pts.at(-1)![1]);
  assertStringIncludes(lossSvg([]), "no data");
});
