// What a page does to sessions: sign out, switch accounts, sign out the
// other devices, add a token. Each ends by telling the other tabs and
// loading what sessiond now says.
import { SessiondError } from "../errors.js";
import type { Http } from "./http.js";
import { asError, failedState, type Store } from "./store.js";
import type { Tokens } from "./tokens.js";
import type { EndResponse, Session, SessiondState, SignOutOptions } from "./types.js";

/** Core is what the actions work with. */
export interface Core {
  http: Http;
  store: Store;
  tokens: Tokens | undefined;
  load(): Promise<SessiondState>;
  announce(): void;
  navigate(url: string): void;
}

/** fail puts a failure into the state and throws it. */
function fail(core: Core, err: unknown): never {
  const e = asError(err);
  core.store.set(failedState(e));
  throw e;
}

/**
 * Whether `url` is something signOut may navigate to: a path on this
 * origin ("/goodbye", never "//host" or "/\\host") or an absolute http(s)
 * URL. sessiond applies the stricter rule (allowed origins); this one keeps
 * a script URL away from `location.assign` whatever the answer says.
 */
function navigable(url: string): boolean {
  // Browsers read a backslash as a slash and skip spaces and controls.
  if (/[\u0000-\u0020\u007f\\]/.test(url)) return false;
  if (url.startsWith("/")) return !url.startsWith("//");
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:";
  } catch {
    return false;
  }
}

export async function signOut(core: Core, opts: SignOutOptions, callback?: (res: EndResponse) => unknown): Promise<EndResponse> {
  const { tokens } = core;
  let res: EndResponse;
  try {
    if (tokens) await tokens.read().catch((err) => fail(core, err));
    res = await core.http.call("DELETE", "/session", { query: { session_id: opts.sessionId, redirect_url: opts.redirectUrl } });
    if (tokens) {
      const ended = new Set(res.ended.map((e) => tokens.of.get(e.id)));
      await tokens.save(tokens.list!.filter((t) => !ended.has(t)));
    }
  } catch (err) {
    if (err instanceof SessiondError && err.code === "unauthenticated") {
      // Already signed out (another tab, another device): show that, no error state.
      await core.load();
      throw err;
    }
    fail(core, err);
  }
  core.announce();
  await core.load();
  await callback?.(res);
  // Only ever the URL this call asked for, once sessiond accepted and
  // echoed it (a refused one was a 400 above), and only a path or an
  // http(s) URL: an answer naming another URL (a javascript: one, say) is
  // not followed.
  if (opts.redirectUrl && res.redirect_url === opts.redirectUrl && navigable(opts.redirectUrl)) core.navigate(opts.redirectUrl);
  return res;
}

export async function setActive(core: Core, session: Session | string): Promise<Session> {
  const id = typeof session === "string" ? session : session.id;
  const { tokens } = core;
  if (tokens?.list) {
    // Token mode: switching is local, the token moves to the front.
    const token = tokens.of.get(id);
    const found = core.store.state.accounts.find((a) => a.id === id);
    if (!token || !found) fail(core, new SessiondError("session_not_found", 404, "no such account in the token cache"));
    await tokens.save([token, ...tokens.list.filter((t) => t !== token)]);
    await core.load();
    return found;
  }
  let res: Session;
  try {
    res = await core.http.call("POST", "/session/active", { body: { session_id: id } });
  } catch (err) {
    fail(core, err);
  }
  core.announce();
  await core.load();
  return res;
}

export async function signOutOthers(core: Core): Promise<EndResponse> {
  const own = core.store.state.session;
  if (!own) fail(core, new SessiondError("unauthenticated", 401, "not signed in"));
  let res: EndResponse;
  try {
    res = await core.http.call("DELETE", "/users/{id}/sessions", { path: { id: own.user_id }, query: { except: own.id } });
  } catch (err) {
    fail(core, err);
  }
  core.announce();
  await core.load();
  return res;
}

export async function addToken(core: Core, token: string): Promise<SessiondState> {
  const { tokens } = core;
  if (!tokens) throw new Error("addToken needs a tokenCache");
  const list = await tokens.read().catch((err) => fail(core, err));
  await tokens.save([token, ...list.filter((t) => t !== token)]);
  return core.load();
}
