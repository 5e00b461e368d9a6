/**
 * Test-only npm packages (the official OpenAI client, puppeteer-core). They are imported at run time through a
 * computed specifier, so they are in no module graph and no lockfile that a `deno task` reads: every task, the test
 * task included, runs with an empty Deno cache and no registry. .ci/run caches them first against .ci/npm.lock
 * (exact versions, integrity checked); where they are not cached the tests that need them are skipped with a message.
 */

export const OPENAI_NPM = "npm:openai@4.104.0";
export const PUPPETEER_NPM = "npm:puppeteer-core@25.19.0";

/** The module at `spec`, or undefined (with a one-line warning naming `user`) when it cannot be loaded here. */
export async function importTestPackage<T>(spec: string, user: string): Promise<T | undefined> {
  try {
    return await import(spec) as T;
  } catch (e) {
    console.warn(`${user}: skipped, cannot load ${spec} (${(e as Error).message.split("\n")[0]}); .ci/run caches it`);
    return undefined;
  }
}
