// @sessiond/js/server: sessiond from a server — a middleware, a route
// handler, a server component, an edge function, a Worker. Only `fetch`,
// `Headers` and `AbortController`: no `node:` import and no runtime
// dependency, so it runs on Node, edge runtimes, Workers, Deno and Bun
// (scripts/check-server-entries.mjs, run by `make js-server-test`, fails otherwise).
//
// Cookies: the request's sessiond cookies go to sessiond untouched, and
// every `Set-Cookie` sessiond answers is handed back verbatim in
// `setCookie: string[]` (read with `Headers.getSetCookie()`, never
// `headers.get("set-cookie")`, which joins several with commas). The app
// appends each one to its response as it is; sessiond alone spells cookie
// attributes.
import type { components, operations } from "./openapi.js";
import type { Answer as AnswerOf, Args, Method, Operation, PathsWith } from "./core/http.js";
import { SessiondError } from "./errors.js";

export { SessiondError, type ErrorCode } from "./errors.js";

/** A session object as sessiond answers it. */
export type Session = components["schemas"]["Session"];
/** The answer of every call that ends sessions. */
export type EndResponse = components["schemas"]["EndResponse"];
/** A status filter for the lists. */
export type ListStatus = components["schemas"]["StatusFilter"];

/** Anything with the request's headers: a `Request`, Next's `NextRequest`, or `{ headers: await headers() }`. */
export interface RequestLike {
  readonly headers: Headers;
}

export interface SessiondClientOptions {
  /** sessiond's base URL as this server reaches it; default `process.env.SESSIOND_URL`. */
  url?: string;
  /** A backend API key (`sk_…`), needed for signIn and `sessions`; default `process.env.SESSIOND_API_KEY`. */
  apiKey?: string;
  /** `SESSIOND_COOKIE_NAME` of the sessiond (default `__session`; e.g. `__Host-session`). */
  cookieName?: string;
  /** The fetch to use; defaults to the global one. */
  fetch?: typeof fetch;
  /** How long one call to sessiond may take before it counts as unavailable; default 2000 ms. */
  timeoutMs?: number;
}

/** The outcome of authenticateRequest. `setCookie` goes onto the response, verbatim, either way. */
export type Auth =
  | { isSignedIn: true; userId: string; sessionId: string; session: Session; setCookie: string[] }
  | { isSignedIn: false; userId: null; sessionId: null; session: null; setCookie: string[] };

export interface SignInParams {
  userId: string;
  /** The browser's request: in multi mode the new account joins the browser's client (see README). */
  request?: RequestLike;
  /** Defaults to the request's `User-Agent`. */
  userAgent?: string;
  /** Not guessed from forwarding headers (they are the client's to forge); pass what your proxy vouches for. */
  ipAddress?: string;
  metadata?: Record<string, unknown>;
}

export interface SignInResult {
  session: Session;
  /** The session token, for a bearer client (a mobile app). Never put it in a page. */
  token: components["schemas"]["SessionToken"];
  setCookie: string[];
}

export interface SignOutResult {
  ended: Session[];
  /** The redirect URL sessiond checked and echoed, or null. */
  redirectUrl: string | null;
  setCookie: string[];
}

/** A list's page size, status filter and cursor (`next_cursor` of the page before). */
export type ListOptions = NonNullable<operations["listUserSessions"]["parameters"]["query"]>;

/** One page of a list. */
export type SessionPage = components["schemas"]["ListResponse"];

export interface SessiondClient {
  /** Who sent this request: its bearer session token, else sessiond's cookies. Throws SessiondError (`isUnavailable`) when sessiond cannot answer. */
  authenticateRequest(request: RequestLike): Promise<Auth>;
  /** Creates a session (API key). Forward `setCookie` to the browser. */
  signIn(params: SignInParams): Promise<SignInResult>;
  /** Signs out the request's session (what sessiond decides, or exactly `sessionId`). */
  signOut(request: RequestLike, options?: { sessionId?: string; redirectUrl?: string }): Promise<SignOutResult>;
  /** Backend calls with the API key. */
  sessions: {
    get(id: string): Promise<Session>;
    end(id: string, options?: { redirectUrl?: string }): Promise<EndResponse>;
    listForUser(userId: string, options?: ListOptions): Promise<SessionPage>;
    endForUser(userId: string, options?: { except?: string }): Promise<EndResponse>;
    listForClient(clientId: string, options?: ListOptions): Promise<SessionPage>;
    endForClient(clientId: string): Promise<EndResponse>;
  };
}

interface Credential {
  authorization?: string;
  cookie?: string;
}

/** What sessiond answered: `json` is the contract's answer for a success, else the problem (or null). */
interface Reply<T> {
  status: number;
  json: T | null;
  /** The problem+json of a failure, as far as it came (a gateway's JSON may hold none of it). */
  problem: Partial<components["schemas"]["Problem"]> | null;
  setCookie: string[];
}

const env = (name: string): string | undefined => (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];

/** createSessiondClient makes the server-side client; it does nothing until called. */
export function createSessiondClient(options: SessiondClientOptions = {}): SessiondClient {
  const url = options.url ?? env("SESSIOND_URL");
  if (!url) throw new Error("createSessiondClient: set url or SESSIOND_URL");
  const base = url.replace(/\/+$/, "");
  const apiKey = options.apiKey ?? env("SESSIOND_API_KEY");
  const name = options.cookieName ?? "__session";
  const doFetch = options.fetch ?? ((i: RequestInfo | URL, o?: RequestInit) => fetch(i, o));
  const timeoutMs = options.timeoutMs ?? 2000;

  // The typed signature is what callers see (the path, its parameters, the
  // body and the answer come from openapi.d.ts, as in the browser core's
  // http); the implementation sees strings.
  function send<M extends Method, P extends PathsWith<M>>(cred: Credential | "key", method: M, path: P, ...args: Args<Operation<P, M>>): Promise<Reply<AnswerOf<P, M>>>;
  async function send(cred: Credential | "key", method: Method, path: string, init: { query?: object; path?: object; body?: unknown } = {}): Promise<Reply<unknown>> {
    const params: Record<string, unknown> = { ...init.path };
    const url = base + path.replace(/\{(\w+)\}/g, (_, p: string) => encodeURIComponent(String(params[p]))) + query({ ...init.query });
    const headers: Record<string, string> = { Accept: "application/json" };
    if (cred === "key") {
      if (!apiKey) throw new Error("@sessiond/js/server: this call needs apiKey or SESSIOND_API_KEY");
      headers.Authorization = "Bearer " + apiKey;
    } else if (cred.authorization) headers.Authorization = cred.authorization;
    else if (cred.cookie) headers.Cookie = cred.cookie;
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const res = await doFetch(url, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), signal: abort.signal });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: a gateway's page
      }
      const object = json !== null && typeof json === "object" ? json : null;
      return { status: res.status, json: res.ok ? object : null, problem: res.ok ? null : object, setCookie: res.headers.getSetCookie() };
    } catch (err) {
      throw new SessiondError("unreachable", 0, abort.signal.aborted ? `sessiond at ${base} did not answer within ${timeoutMs} ms` : `cannot reach sessiond at ${base}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  function failure(a: Reply<unknown>): SessiondError {
    const p = a.problem;
    if (p && typeof p.code === "string") return new SessiondError(p.code, a.status, String(p.detail ?? ""), p.request_id ?? null, p.errors ?? null);
    if (a.status >= 200 && a.status < 300) return new SessiondError("invalid_response", a.status, "the answer is not JSON");
    const gateway = a.status === 502 || a.status === 503 || a.status === 504;
    return new SessiondError(gateway ? "unreachable" : "invalid_response", a.status, `sessiond answered ${a.status} without a problem body`);
  }

  /** ok is the answer of a backend call (the API key), or its failure thrown. */
  async function ok<M extends Method, P extends PathsWith<M>>(method: M, path: P, ...args: Args<Operation<P, M>>): Promise<AnswerOf<P, M>> {
    const a = await send("key", method, path, ...args);
    if (a.json === null) throw failure(a);
    return a.json;
  }

  // The request's credential for sessiond: a bearer session token, else
  // sessiond's own cookies (the active one and the account cookies) and no
  // other cookie of the app. A sessiond cookie name sent twice (a cookie
  // tossed in from a sibling host or another path) is never trusted: the
  // request counts as carrying no credential.
  function credential(request: RequestLike, cookiesOnly = false): Credential | null {
    const bearer = /^Bearer\s+(st_\S+)$/i.exec(request.headers.get("authorization") ?? "");
    if (bearer && !cookiesOnly) return { authorization: "Bearer " + bearer[1] };
    const seen = new Set<string>();
    const kept: string[] = [];
    for (const part of (request.headers.get("cookie") ?? "").split(";")) {
      const i = part.indexOf("=");
      const n = part.slice(0, i).trim();
      if (i < 0 || (n !== name && !n.startsWith(name + "_"))) continue;
      if (seen.has(n)) return null;
      seen.add(n);
      kept.push(n + "=" + part.slice(i + 1).trim());
    }
    return seen.has(name) ? { cookie: kept.join("; ") } : null;
  }

  const signedOut = (setCookie: string[]): Auth => ({ isSignedIn: false, userId: null, sessionId: null, session: null, setCookie });

  async function authenticateRequest(request: RequestLike): Promise<Auth> {
    const cred = credential(request);
    if (!cred) return signedOut([]);
    const a = await send(cred, "GET", "/session");
    if (a.status === 401) return signedOut(a.setCookie);
    const session = a.json;
    if (a.status !== 200 || !session?.id) throw a.status === 200 ? new SessiondError("invalid_response", 200, "the answer is not a session") : failure(a);
    return { isSignedIn: true, userId: session.user_id, sessionId: session.id, session, setCookie: a.setCookie };
  }

  async function signIn(p: SignInParams): Promise<SignInResult> {
    let clientId: string | undefined;
    let before: string[] = [];
    const cred = p.request && credential(p.request, true);
    if (cred) {
      // Join the browser's client only once sessiond has confirmed its active cookie.
      const a = await send(cred, "GET", "/session");
      if (a.status === 200 && a.json?.client_id) clientId = a.json.client_id;
      else if (a.status !== 401) throw failure(a);
      before = a.setCookie;
    }
    const a = await send("key", "POST", "/sessions", {
      body: {
        user_id: p.userId,
        client_id: clientId,
        user_agent: p.userAgent ?? p.request?.headers.get("user-agent") ?? undefined,
        ip_address: p.ipAddress,
        metadata: p.metadata,
      },
    });
    if (a.status !== 201 || !a.json) throw failure(a);
    return { session: a.json.session, token: a.json.token, setCookie: [...before, ...a.setCookie] };
  }

  async function signOut(request: RequestLike, o: { sessionId?: string; redirectUrl?: string } = {}): Promise<SignOutResult> {
    const cred = credential(request);
    if (!cred) return { ended: [], redirectUrl: null, setCookie: [] };
    const a = await send(cred, "DELETE", "/session", { query: { session_id: o.sessionId, redirect_url: o.redirectUrl } });
    if (a.status === 401) return { ended: [], redirectUrl: null, setCookie: a.setCookie }; // already signed out
    if (a.status !== 200 || !a.json) throw failure(a);
    return { ended: a.json.ended ?? [], redirectUrl: a.json.redirect_url ?? null, setCookie: a.setCookie };
  }

  return {
    authenticateRequest,
    signIn,
    signOut,
    sessions: {
      get: (id) => ok("GET", "/sessions/{id}", { path: { id } }),
      end: (id, o = {}) => ok("DELETE", "/sessions/{id}", { path: { id }, query: { redirect_url: o.redirectUrl } }),
      listForUser: (id, query = {}) => ok("GET", "/users/{id}/sessions", { path: { id }, query }),
      endForUser: (id, o = {}) => ok("DELETE", "/users/{id}/sessions", { path: { id }, query: { except: o.except } }),
      listForClient: (id, query = {}) => ok("GET", "/clients/{id}/sessions", { path: { id }, query }),
      endForClient: (id) => ok("DELETE", "/clients/{id}/sessions", { path: { id } }),
    },
  };
}

function query(params: { [k: string]: unknown }): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}

/**
 * redirectPath returns `raw` when it is a path sessiond itself accepts as a
 * relative redirect_url ("/", "/settings?tab=2"; never "//host", "/\\host",
 * "/.//host", a control character or a space), else `fallback`. Use it for
 * an app's own "return to" parameter before handing it to a redirect, so
 * the app and sessiond follow one rule and the app is no open redirect.
 */
export function redirectPath(raw: string | null | undefined, fallback = "/"): string {
  if (!raw || new TextEncoder().encode(raw).length > 2048 || !raw.startsWith("/") || raw.startsWith("//")) return fallback;
  // Browsers read a backslash as a slash and skip spaces and controls;
  // a lone surrogate or a broken escape is no URL sessiond echoes.
  if (/[\u0000-\u0020\u007f\\]|%(?![0-9a-fA-F]{2})/.test(raw) || !wellFormed(raw)) return fallback;
  const path = raw.split(/[?#]/, 1)[0];
  return withoutDotSegments(path).startsWith("//") ? fallback : raw;
}

function wellFormed(s: string): boolean {
  try {
    encodeURI(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * withoutDotSegments is RFC 3986's remove_dot_segments on an absolute path,
 * reading "%2e" as a dot as browsers do: "/a/..//host" is "//host".
 */
function withoutDotSegments(path: string): string {
  const segments = path.split("/").slice(1);
  const out: string[] = [];
  segments.forEach((seg, i) => {
    const dots = seg.toLowerCase().replaceAll("%2e", ".");
    if (dots !== "." && dots !== "..") return void out.push(seg);
    if (dots === "..") out.pop();
    if (i === segments.length - 1) out.push(""); // "/a/." is "/a/"
  });
  return "/" + out.join("/");
}

export interface ProxyOptions {
  /** sessiond's base URL as this server reaches it; default `process.env.SESSIOND_URL`. */
  url?: string;
  /** The path the app serves sessiond under; default `/api/auth`. */
  prefix?: string;
  /** The fetch to use; defaults to the global one. */
  fetch?: typeof fetch;
}

/**
 * proxyRequest answers a page's request for sessiond behind the app's own
 * origin: `<prefix>/session?x` goes to sessiond's `/session?x` with the
 * method, the body and only the headers sessiond reads (Accept,
 * Content-Type, Cookie, Last-Event-ID); sessiond's status and body come back
 * as they are (streamed, so the event stream works), with Content-Type,
 * Cache-Control, Retry-After, X-Request-Id and every Set-Cookie verbatim.
 * The request's abort signal ends the call (a page that left closes its
 * event stream). sessiond unreachable is a 502 with no body; a path outside
 * `prefix`, or one no page calls (`/metrics`, `/readyz`, `/openapi.yaml`:
 * the operator's, not the visitors'), a 404 without a call. Export it as every method of the prefix's catch-all route
 * (Next's app/api/auth/[...path]/route.ts, Astro's src/pages/api/auth/[...path].ts).
 */
/** The paths of sessiond a page calls (the browser client's, and nothing of the operator's). */
const pagePaths = /^\/(session(\/active|\/events)?|(clients|users)\/[^/]+\/sessions)$/;

export async function proxyRequest(request: Request, options: ProxyOptions = {}): Promise<Response> {
  const url = options.url ?? env("SESSIOND_URL");
  if (!url) throw new Error("proxyRequest: set url or SESSIOND_URL");
  const prefix = (options.prefix ?? "/api/auth").replace(/\/+$/, "");
  const { pathname, search } = new URL(request.url);
  const path = pathname.startsWith(prefix + "/") ? pathname.slice(prefix.length) : "";
  // Only the endpoints a page calls: /metrics, /readyz and the rest are
  // for the operator's network, never for the app's visitors.
  if (!pagePaths.test(path)) return new Response(null, { status: 404 });
  const headers = new Headers();
  for (const name of ["accept", "content-type", "cookie", "last-event-id"]) {
    const v = request.headers.get(name);
    if (v) headers.set(name, v);
  }
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url.replace(/\/+$/, "") + path + search, {
      method: request.method,
      headers,
      body: request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer(),
      signal: request.signal,
    });
  } catch {
    return new Response(null, { status: 502 });
  }
  const out = new Headers();
  for (const name of ["content-type", "cache-control", "retry-after", "x-request-id"]) {
    const v = res.headers.get(name);
    if (v) out.set(name, v);
  }
  for (const c of res.headers.getSetCookie()) out.append("set-cookie", c);
  return new Response(res.body, { status: res.status, headers: out });
}

/** Cookie options in the shape frameworks take (Next's `cookies().set`, Astro's `cookies.set`). */
export interface CookieOptions {
  domain?: string;
  path?: string;
  maxAge?: number;
  expires?: Date;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: "lax" | "strict" | "none";
  partitioned?: boolean;
}

export interface ParsedCookie {
  name: string;
  value: string;
  options: CookieOptions;
}

/**
 * parseSetCookie reads one `Set-Cookie` header for a framework that sets
 * cookies by name, value and options. serializeSetCookie gives the header
 * back byte for byte for every cookie sessiond writes (tested); prefer
 * appending sessiond's headers verbatim where the framework allows it.
 */
export function parseSetCookie(header: string): ParsedCookie {
  const [pair, ...attrs] = header.split(";");
  const i = pair.indexOf("=");
  const options: CookieOptions = {};
  for (const attr of attrs) {
    const j = attr.indexOf("=");
    const key = (j < 0 ? attr : attr.slice(0, j)).trim().toLowerCase();
    const val = j < 0 ? "" : attr.slice(j + 1).trim();
    if (key === "domain") options.domain = val;
    else if (key === "path") options.path = val;
    else if (key === "max-age") options.maxAge = Number(val);
    else if (key === "expires") options.expires = new Date(val);
    else if (key === "httponly") options.httpOnly = true;
    else if (key === "secure") options.secure = true;
    else if (key === "samesite") options.sameSite = val.toLowerCase() as CookieOptions["sameSite"];
    else if (key === "partitioned") options.partitioned = true;
  }
  return { name: pair.slice(0, i).trim(), value: pair.slice(i + 1).trim(), options };
}

/** serializeSetCookie writes a cookie in the attribute order sessiond (Go's net/http) uses. */
export function serializeSetCookie({ name, value, options: o }: ParsedCookie): string {
  let s = `${name}=${value}`;
  if (o.path !== undefined) s += `; Path=${o.path}`;
  if (o.domain !== undefined) s += `; Domain=${o.domain}`;
  if (o.expires) s += `; Expires=${o.expires.toUTCString()}`;
  if (o.maxAge !== undefined) s += `; Max-Age=${o.maxAge}`;
  if (o.httpOnly) s += "; HttpOnly";
  if (o.secure) s += "; Secure";
  if (o.sameSite) s += `; SameSite=${o.sameSite[0].toUpperCase()}${o.sameSite.slice(1)}`;
  if (o.partitioned) s += "; Partitioned";
  return s;
}
