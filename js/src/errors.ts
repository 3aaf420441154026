// SessiondError, shared by every entry (browser core, server, webhooks) so
// that one instanceof check works whichever entry threw it.
import type { components } from "./openapi.js";

type Problem = components["schemas"]["Problem"];

/**
 * ErrorCode is a sessiond problem code, or one the client itself gives:
 * `unreachable` (no answer, or a gateway's 502/503/504 without a problem
 * body: sessiond is down or the network is), `invalid_response` (an answer
 * that is not what the contract says) and `storage_unavailable` (a
 * tokenCache that could not be read: unavailable, not signed out).
 */
export type ErrorCode = Problem["code"] | "unreachable" | "invalid_response" | "storage_unavailable";

/**
 * SessiondError is how every failed call surfaces: the fields of the
 * problem+json sessiond answered (code, status, detail, request_id), or
 * code `unreachable` with status 0 when nothing answered.
 */
export class SessiondError extends Error {
  readonly code: ErrorCode;
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  readonly detail: string;
  readonly request_id: string | null;
  /** Per-field reasons of an `invalid_request`. */
  readonly errors: Record<string, string> | null;

  constructor(code: ErrorCode, status: number, detail: string, requestId: string | null = null, errors: Record<string, string> | null = null) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = "SessiondError";
    this.code = code;
    this.status = status;
    this.detail = detail;
    this.request_id = requestId;
    this.errors = errors;
  }

  /** True when sessiond could not be reached or could not serve (5xx): the session may well still be valid. */
  get isUnavailable(): boolean {
    return this.status === 0 || this.status >= 500;
  }
}

