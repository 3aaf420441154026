// @sessiond/js/next: the App Router. A middleware that authenticates once
// per request and applies sessiond's cookies; auth() for server
// components, route handlers and server actions; signIn() / signOut() for
// server actions and route handlers; and <SessiondProvider>, a server
// component that hands auth()'s answer to the client provider so the first
// HTML already shows the user. Configured by the environment:
// SESSIOND_URL, SESSIOND_API_KEY, SESSIOND_COOKIE_NAME, SESSIOND_SIGN_IN_URL.
import { cookies, headers } from "next/headers";
import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { NextResponse, type NextRequest } from "next/server";
import { cache, createElement, type ReactNode } from "react";
import type { InitialState } from "./index.js";
import { SessiondClientProvider } from "./next-client.js";
import { createSessiondClient, parseSetCookie, SessiondError, type Auth, type RequestLike, type SessiondClient, type SignInParams } from "./server.js";

export { redirectPath, SessiondError, type Auth } from "./server.js";

const env = (name: string): string | undefined => (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
let shared: SessiondClient | undefined;
const client = () => (shared ??= createSessiondClient({ cookieName: env("SESSIOND_COOKIE_NAME") }));
const signInUrl = () => env("SESSIOND_SIGN_IN_URL") ?? "/sign-in";

// The middleware hands its answer to auth() in a request header, so a page
// behind it costs one call to sessiond, not two. The header is an HMAC
// (keyed with the API key, which the browser never has) over the answer and
// the request's own Cookie and Authorization headers: a forged header, or
// one replayed with other cookies, is ignored and auth() asks sessiond.
const AUTH_HEADER = "x-sessiond-auth";

async function mac(text: string): Promise<string | null> {
  const apiKey = env("SESSIOND_API_KEY");
  if (!apiKey) return null;
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(apiKey), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(text)))));
}

const bound = (a: string, h: Headers) => JSON.stringify([a, h.get("cookie"), h.get("authorization")]);

async function seal(a: Auth, h: Headers): Promise<string | null> {
  const body = encodeURIComponent(JSON.stringify({ ...a, setCookie: [] }));
  const sig = await mac(bound(body, h));
  return sig && body + "." + sig;
}

async function unseal(h: Headers): Promise<Auth | null> {
  const sealed = h.get(AUTH_HEADER) ?? "";
  const body = sealed.slice(0, sealed.lastIndexOf(".")); // the answer itself may hold dots
  const sig = sealed.slice(body.length + 1);
  const want = await mac(bound(body, h));
  if (!want || !sig) return null;
  let diff = want.length ^ sig.length; // constant time: the header may come from anyone
  for (let i = 0; i < want.length; i++) diff |= want.charCodeAt(i) ^ sig.charCodeAt(i);
  return diff ? null : JSON.parse(decodeURIComponent(body));
}

export interface MiddlewareOptions {
  /** Which requests need a signed-in user: signed out → redirect to signInUrl; sessiond unavailable → 503. */
  protect?: (request: NextRequest) => boolean;
  /** Where protect sends the signed out (default SESSIOND_SIGN_IN_URL or `/sign-in`); gets `?redirect_url=` the page. */
  signInUrl?: string;
}

/**
 * sessiondMiddleware for `middleware.ts` (Edge runtime), or Next.js 16's
 * `proxy.ts` (Node.js): authenticates each page request
 * once (not prefetches, not static files), appends sessiond's Set-Cookie
 * headers verbatim, and applies `protect`.
 */
export function sessiondMiddleware(options: MiddlewareOptions = {}) {
  return async (request: NextRequest): Promise<Response> => {
    const h = new Headers(request.headers);
    h.delete(AUTH_HEADER);
    const next = () => NextResponse.next({ request: { headers: h } });
    const path = request.nextUrl.pathname;
    const purpose = (request.headers.get("sec-purpose") ?? "") + (request.headers.get("purpose") ?? "");
    if (path.startsWith("/_next/") || /\.\w+$/.test(path)) return next();
    // A prefetch would cost a call to sessiond for a render the router
    // throws away: decline it. (Next strips these headers from the request
    // a middleware sees; there the matcher's `missing` skips prefetches, see
    // docs/javascript.md.)
    if (request.headers.has("next-router-prefetch") || purpose.includes("prefetch")) return new NextResponse(null, { status: 204 });
    const protect = options.protect?.(request) ?? false;
    let a: Auth;
    try {
      a = await client().authenticateRequest(request);
    } catch (err) {
      if (!(err instanceof SessiondError && err.isUnavailable)) throw err;
      // Down is not signed out: no redirect, and the browser keeps its cookies.
      return protect ? new NextResponse("<!doctype html><title>Unavailable</title><p>Sign-in is unavailable right now; try again shortly.</p>", { status: 503, headers: { "content-type": "text/html", "retry-after": "5" } }) : next();
    }
    let res: Response;
    if (protect && !a.isSignedIn) {
      const to = new URL(options.signInUrl ?? signInUrl(), request.url);
      to.searchParams.set("redirect_url", path + request.nextUrl.search);
      res = NextResponse.redirect(to);
    } else {
      const sealed = await seal(a, h);
      if (sealed) h.set(AUTH_HEADER, sealed);
      res = next();
    }
    for (const c of a.setCookie) res.headers.append("set-cookie", c);
    return res;
  };
}

async function authOnce(): Promise<Auth> {
  const h = await headers();
  return (await unseal(h)) ?? client().authenticateRequest({ headers: h });
}

/**
 * auth(): who sent this request, in server components, route handlers and
 * server actions; one call to sessiond per request (none behind
 * sessiondMiddleware). Throws SessiondError (`isUnavailable`) when
 * sessiond cannot answer. `auth.protect()` redirects the signed out.
 */
export const auth: (() => Promise<Auth>) & { protect(options?: { signInUrl?: string }): Promise<Extract<Auth, { isSignedIn: true }>> } = Object.assign(cache(authOnce), {
  async protect(options: { signInUrl?: string } = {}) {
    const a = await auth();
    if (!a.isSignedIn) redirect(options.signInUrl ?? signInUrl());
    return a;
  },
});

async function apply(setCookie: string[]): Promise<void> {
  const jar = await cookies();
  for (const h of setCookie) {
    const c = parseSetCookie(h);
    jar.set(c.name, c.value, c.options);
  }
  revalidatePath("/", "layout"); // the router cache forgets pages rendered for the old session
}

/** signIn for server actions and route handlers: creates the session and sets sessiond's cookies. */
export async function signIn(params: Omit<SignInParams, "request">): Promise<{ sessionId: string; userId: string }> {
  const r = await client().signIn({ ...params, request: { headers: await headers() } as RequestLike });
  await apply(r.setCookie);
  return { sessionId: r.session.id, userId: r.session.user_id };
}

/** signOut for server actions and route handlers: ends what sessiond decides (or `sessionId`), clears the cookies, then redirects to `redirectUrl` as sessiond echoed it. */
export async function signOut(options: { sessionId?: string; redirectUrl?: string } = {}): Promise<{ ended: string[] }> {
  const r = await client().signOut({ headers: await headers() }, options);
  await apply(r.setCookie);
  if (r.redirectUrl) redirect(r.redirectUrl);
  return { ended: r.ended.map((s) => s.id) };
}

/** SessiondProvider (server component): the client provider with auth()'s answer as initialState. `url` is sessiond as the page reaches it. */
export async function SessiondProvider({ url, children }: { url: string; children?: ReactNode }) {
  let initialState: InitialState = { status: "unavailable", session: null };
  try {
    const a = await auth();
    initialState = { status: a.isSignedIn ? "signed-in" : "signed-out", session: a.session };
  } catch (err) {
    if (!(err instanceof SessiondError && err.isUnavailable)) throw err;
  }
  return createElement(SessiondClientProvider, { url, initialState }, children);
}
