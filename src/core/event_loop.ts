/**
 * Yielding to the event loop: the one helper long synchronous work (merge, quantize, a chat reply) awaits so timers,
 * I/O and signal listeners (Ctrl+C) can run.
 */

/** A macrotask turn of the event loop: awaiting a resolved promise alone never lets timers or signals run. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
