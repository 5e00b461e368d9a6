/**
 * Error classes shared by every room.
 * see: ../shared/STYLE.md "Errors and bad input"
 */

/** Where in a file a format problem was found. */
export interface FormatErrorOptions {
  /** Format name, e.g. "gguf", "safetensors", "pickle". */
  format: string;
  /** Byte offset of the problem in the file, when known. */
  offset?: number;
  /** File path, when known. */
  path?: string;
  cause?: unknown;
}

/**
 * A file is malformed: bad magic, truncated, lengths out of range, overlaps, …
 *
 * @example
 * ```ts
 * throw new FormatError("Cannot parse GGUF header: tensor count 9e12 exceeds file size", { format: "gguf", offset: 8 });
 * ```
 */
export class FormatError extends SyntaxError {
  readonly format: string;
  readonly offset?: number;
  readonly path?: string;
  constructor(message: string, options: FormatErrorOptions) {
    const where = [
      options.path !== undefined ? `in "${options.path}"` : "",
      options.offset !== undefined ? `at byte ${options.offset}` : "",
    ].filter((s) => s).join(" ");
    super(where ? `${message} (${where})` : message, { cause: options.cause });
    this.name = "FormatError";
    this.format = options.format;
    this.offset = options.offset;
    this.path = options.path;
  }
}

/** Valid input that yangtuo does not support (yet), e.g. a quantization type we cannot read. */
export class UnsupportedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnsupportedError";
  }
}

/** A user-facing error with an optional hint on how to fix it; printed by cli.ts as `error:` / `hint:`. */
export class UserError extends Error {
  readonly hint?: string;
  constructor(message: string, hint?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UserError";
    this.hint = hint;
  }
}

/** Bad command-line usage; cli.ts exits with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
