/**
 * Flag parsing shared by every command: node:util parseArgs with strict checking, mapped to UsageError (exit 2).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../core/errors.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses `args` against `options`; unknown flags and missing values become UsageError. */
export function parseFlags<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true, allowNegative: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify.*$/s, ""));
  }
}

/** The flags every file-writing pipeline command (merge, convert, quantize) takes: -t/--threads, --force, -h/--help. */
export const PIPELINE_FLAGS = {
  threads: { type: "string", short: "t" },
  force: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** Parses an integer flag value, or throws UsageError naming the flag. */
export function intFlag(value: string | undefined, name: string, fallback: number, min = -Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`${name} expects an integer${min > -Infinity ? ` ≥ ${min}` : ""}, got "${value}"`);
  }
  return n;
}

/** Parses a float flag value, or throws UsageError naming the flag. */
export function floatFlag(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`${name} expects a number, got "${value}"`);
  return n;
}
