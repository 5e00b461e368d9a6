/** Small internal assertion helpers used by core. */

/** Throws a RangeError with `message` when `failed` is true. */
export function rangeCheck(failed: boolean, message: string): void {
  if (failed) throw new RangeError(message);
}
