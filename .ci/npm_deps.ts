// deno-lint-ignore-file no-import-prefix
// Static imports of the test-only npm packages, for `.ci/run` to cache them against .ci/npm.lock (see tests/_npm.ts).
// Nothing imports this file; keep the versions equal to tests/_npm.ts's specifiers.
import "npm:openai@4.104.0";
import "npm:puppeteer-core@25.19.0";
