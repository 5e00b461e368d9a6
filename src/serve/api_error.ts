/**
 * ApiError: a request the server refuses, in OpenAI's error shape `{"error": {"message", "type", "param", "code"}}`
 * with its HTTP status. Anything else thrown while handling a request becomes a 500 with a fixed message (never a
 * stack trace).
 * see: https://platform.openai.com/docs/guides/error-codes, llama.cpp tools/server (format_error_response)
 */

/** The `type` field of each status, as OpenAI and llama-server spell them. */
const TYPE_OF_STATUS: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  405: "invalid_request_error",
  413: "invalid_request_error",
  500: "server_error",
  503: "unavailable_error",
};

/** An error a client sees: HTTP status, message, and OpenAI's `code` / `param`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly param: string | null;
  constructor(status: number, message: string, code: string | null = null, param: string | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.param = param;
  }

  /** OpenAI's `type` for this status. */
  get type(): string {
    return TYPE_OF_STATUS[this.status] ?? "invalid_request_error";
  }

  /** The JSON body `{"error": {...}}`. */
  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 about one request field. */
export function badField(param: string, message: string): ApiError {
  return new ApiError(400, message, "invalid_value", param);
}

/** `e` as an ApiError: itself, or a 500 that says nothing about the internals. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError(500, "The server failed while handling the request", "internal_error");
}
