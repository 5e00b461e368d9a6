/**
 * Ctrl+C cleanup for commands that write files: a SIGINT handler that removes the partial output and exits 130.
 * Kept apart from _model_fs.ts so that a command needing only this does not load the Node compatibility layer
 * (node:fs) at start-up.
 */
import { AtomicFileSink } from "../io/atomic_file.ts";

/**
 * Runs `cleanup` and exits with 130 on Ctrl+C (SIGINT) until the returned function is called. Long synchronous
 * stretches delay it until the next yieldToEventLoop(); a hard kill leaves only hidden `.yangtuo-*` temp files.
 */
export function onInterrupt(cleanup: () => void): () => void {
  const handler = () => {
    try {
      cleanup();
    } finally {
      console.error("\ninterrupted: removed the partial output");
      Deno.exit(130);
    }
  };
  try {
    Deno.addSignalListener("SIGINT", handler);
  } catch {
    return () => {};
  }
  return () => Deno.removeSignalListener("SIGINT", handler);
}

/**
 * An AtomicFileSink for `path` whose temp file Ctrl+C removes (exit 130) until `release()`. The handler is installed
 * before the temp file exists: a SIGINT in between would otherwise kill the process with the file left on disk.
 */
export function interruptibleSink(path: string): { sink: AtomicFileSink; release: () => void } {
  const guard: { sink?: AtomicFileSink } = {};
  const release = onInterrupt(() => guard.sink?.abort());
  try {
    guard.sink = new AtomicFileSink(path);
  } catch (e) {
    release();
    throw e;
  }
  return { sink: guard.sink, release };
}
