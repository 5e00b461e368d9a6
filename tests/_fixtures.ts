/**
 * Locating the shared reference data (`YANGTUO_TESTDATA`, default ../shared/data) and skipping cleanly without it.
 */

/** The test-data root: $YANGTUO_TESTDATA or ../shared/data relative to the repo root. */
export function testDataRoot(): string {
  let env: string | undefined;
  try {
    env = Deno.env.get("YANGTUO_TESTDATA");
  } catch { /* no env permission */ }
  if (env) return env.replace(/\/$/, "");
  return new URL("../../shared/data", import.meta.url).pathname.replace(/\/$/, "");
}

/** Absolute path of `rel` under the test-data root, or undefined (with a printed skip message) when absent. */
export function testDataPath(rel: string): string | undefined {
  const p = `${testDataRoot()}/${rel}`;
  try {
    Deno.statSync(p);
    return p;
  } catch {
    console.warn(`skip: test data "${p}" not found (set YANGTUO_TESTDATA to the shared data folder)`);
    return undefined;
  }
}

/** True when the test-data file exists (no message). */
export function hasTestData(rel: string): boolean {
  try {
    Deno.statSync(`${testDataRoot()}/${rel}`);
    return true;
  } catch {
    return false;
  }
}

/** Options for Deno.test that ignore the test when `rel` is missing under the test-data root. */
export function needsTestData(...rels: string[]): { ignore: boolean } {
  const missing = rels.filter((r) => !hasTestData(r));
  if (missing.length) {
    console.warn(`skip: test data missing: ${missing.join(", ")} (set YANGTUO_TESTDATA; default ../shared/data)`);
  }
  return { ignore: missing.length > 0 };
}
