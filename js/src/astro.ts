// @sessiond/js/astro: a middleware that puts auth() on Astro.locals (one
// call to sessiond per request, only when a page asks) and appends
// sessiond's Set-Cookie headers to the response verbatim. The sign-out
// button is the Astro component @sessiond/js/astro/SignOutButton.astro.
import { createSessiondClient, type Auth, type SessiondClient, type SessiondClientOptions } from "./server.js";

export { redirectPath, SessiondError, type Auth } from "./server.js";

/** SessiondLocals: add to your `App.Locals` (src/env.d.ts). */
export interface SessiondLocals {
  /** Who sent this request; throws SessiondError (`isUnavailable`) when sessiond cannot answer. */
  auth(): Promise<Auth>;
}

interface Context {
  request: Request;
  locals: object;
}

/** sessiondMiddleware: `export const onRequest = sessiondMiddleware();` in src/middleware.ts. Options default to the SESSIOND_* environment. */
export function sessiondMiddleware(options: SessiondClientOptions = {}) {
  let client: SessiondClient | undefined;
  return async (context: Context, next: () => Promise<Response>): Promise<Response> => {
    client ??= createSessiondClient({ cookieName: (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.SESSIOND_COOKIE_NAME, ...options });
    let pending: Promise<Auth> | undefined;
    (context.locals as SessiondLocals).auth = () => (pending ??= client!.authenticateRequest(context.request));
    const res = await next();
    const a = await pending?.catch(() => null);
    for (const c of a?.setCookie ?? []) res.headers.append("set-cookie", c);
    return res;
  };
}
