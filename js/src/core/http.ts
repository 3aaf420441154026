// Calls to sessiond, typed from openapi.yaml's paths (the way openapi-fetch
// types them, without the dependency): the path, its parameters, the body
// and the answer all come from src/openapi.d.ts, so a call the contract
// does not have does not compile.
import type { paths } from "../openapi.js";
import { SessiondError } from "../errors.js";

export type Method = "GET" | "POST" | "DELETE";
/** The operation at `path` for `method` (undefined where the contract has none). */
export type Operation<P extends keyof paths, M extends Method> = paths[P][Lowercase<M>];
/** The paths that have `method`. */
export type PathsWith<M extends Method> = { [P in keyof paths]: Operation<P, M> extends { responses: object } ? P : never }[keyof paths];

/** The JSON a successful call answers. */
export type Answer<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { responses: { 200: { content: { "application/json": infer T } } } }
    ? T
    : Operation<P, M> extends { responses: { 201: { content: { "application/json": infer T } } } }
      ? T
      : never;

type ParamsOf<O> = O extends { parameters: infer X } ? X : never;
/** What a call takes: the path's parameters (required where the path has some), its query, its JSON body (required where the operation has one), and a bearer token instead of the cached one. */
export type CallInit<O> = { token?: string; query?: NonNullable<ParamsOf<O> extends { query?: infer Q } ? Q : never> } &
  (ParamsOf<O> extends { path: infer Path } ? { path: Path } : { path?: never }) &
  (O extends { requestBody: { content: { "application/json": infer B } } } ? { body: B } : { body?: never });
export type Args<O> = object extends CallInit<O> ? [init?: CallInit<O>] : [init: CallInit<O>];

export interface Http {
  call<M extends Method, P extends PathsWith<M>>(method: M, path: P, ...args: Args<Operation<P, M>>): Promise<Answer<P, M>>;
}

/**
 * createHttp calls sessiond at `base`. With `tokens` (token mode) it sends
 * the active token as a bearer and no cookies; otherwise the browser's
 * cookies. Every failure is a SessiondError: a problem as sessiond wrote
 * it, `unreachable` when nothing (or only a gateway) answered,
 * `invalid_response` for an answer that is not the contract's.
 */
export function createHttp(base: string, doFetch: typeof fetch, tokens?: { list: string[] | null }): Http {
  // The typed signature is what callers see; the implementation sees strings.
  function call<M extends Method, P extends PathsWith<M>>(method: M, path: P, ...args: Args<Operation<P, M>>): Promise<Answer<P, M>>;
  async function call(method: Method, path: string, init: { token?: string; query?: object; path?: object; body?: unknown } = {}) {
    const params: Record<string, unknown> = { ...init.path };
    let url = base + path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(params[name])));
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined && v !== "") q.set(k, String(v));
    const qs = q.toString();
    if (qs) url += "?" + qs;
    const headers: Record<string, string> = { Accept: "application/json" };
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    const token = init.token ?? tokens?.list?.[0];
    if (token) headers.Authorization = "Bearer " + token;
    let res: Response;
    try {
      res = await doFetch(url, {
        method,
        credentials: tokens ? "omit" : "include",
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
    } catch (err) {
      throw new SessiondError("unreachable", 0, `cannot reach sessiond at ${base}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const text = await res.text().catch(() => "");
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: a gateway's page, or worse
    }
    if (res.ok) {
      if (json === null || typeof json !== "object") throw new SessiondError("invalid_response", res.status, "the answer is not JSON");
      return json;
    }
    if (json && typeof json.code === "string") {
      throw new SessiondError(json.code, res.status, String(json.detail ?? ""), json.request_id ?? res.headers.get("X-Request-ID"), json.errors ?? null);
    }
    const gateway = res.status === 502 || res.status === 503 || res.status === 504;
    throw new SessiondError(gateway ? "unreachable" : "invalid_response", res.status, `sessiond answered ${res.status} without a problem body`);
  }
  return { call };
}
