/**
 * Checksum lists for --sha256: `sha256sum` output (`<64 hex>  [*]<path>` per line) or the seed's SHA256.md
 * (Markdown tables whose cells hold one or more hashes separated by <br/>, labelled by the row's first cells,
 * with no file names).
 * see: ../shared/data/seed/SHA256.md, coreutils sha256sum --check format
 */

/** A parsed checksum list. */
export interface ChecksumList {
  format: "sha256sum" | "markdown";
  /** sha256sum: file name (as listed) → hash. */
  byName: Map<string, string>;
  /** Every hash listed → a label (the file name, or the Markdown row, e.g. "7B | 00"). */
  labels: Map<string, string>;
}

/** Parses a checksum file of either format. */
export function parseChecksumList(text: string): ChecksumList {
  const byName = new Map<string, string>();
  const labels = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  const sum = /^\\?([0-9a-fA-F]{64})\s+[* ]?(.+?)\s*$/;
  if (lines.some((l) => sum.test(l))) {
    for (const l of lines) {
      const m = sum.exec(l);
      if (!m) continue;
      const h = m[1].toLowerCase();
      byName.set(m[2], h);
      labels.set(h, m[2]);
    }
    return { format: "sha256sum", byName, labels };
  }
  let heading = "";
  for (const l of lines) {
    if (/^#+\s/.test(l)) heading = l.replace(/^#+\s*/, "").trim();
    if (!l.trim().startsWith("|")) continue;
    const cells = l.split("|").slice(1, -1).map((c) => c.trim());
    const hashes = cells.flatMap((c) => [...c.matchAll(/\b[0-9a-fA-F]{64}\b/g)].map((m) => m[0].toLowerCase()));
    if (hashes.length === 0) continue;
    const label = cells.filter((c) => !/[0-9a-fA-F]{64}/.test(c)).join(" ").trim();
    for (const h of hashes) labels.set(h, [heading, label].filter((s) => s).join(": "));
  }
  return { format: "markdown", byName, labels };
}

/** The outcome of checking one file. */
export type ChecksumVerdict =
  | { ok: true; label: string }
  | { ok: false; reason: "mismatch"; expected: string }
  | { ok: false; reason: "unlisted" };

/** Checks `actual` (lower-case hex) of the file at `path` against the list. */
export function checkFileHash(list: ChecksumList, path: string, actual: string): ChecksumVerdict {
  if (list.format === "sha256sum") {
    const base = path.slice(path.lastIndexOf("/") + 1);
    let expected: string | undefined;
    for (const [name, h] of list.byName) {
      if (name === path || name === base || path.endsWith(`/${name.replace(/^\.\//, "")}`)) expected = h;
    }
    if (expected === undefined) return { ok: false, reason: "unlisted" };
    return expected === actual
      ? { ok: true, label: list.labels.get(actual)! }
      : { ok: false, reason: "mismatch", expected };
  }
  const label = list.labels.get(actual);
  return label !== undefined ? { ok: true, label } : { ok: false, reason: "unlisted" };
}
