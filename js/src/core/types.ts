// The browser core's public types. The wire types come from openapi.yaml
// (src/openapi.d.ts), so the client and sessiond's contract cannot drift.
import type { components } from "../openapi.js";
import type { SessiondError } from "../errors.js";
import type { SessiondEnv } from "./env.js";

/** A session object as sessiond answers it. */
export type Session = components["schemas"]["Session"];
/** The answer of every call that ends sessions. */
export type EndResponse = components["schemas"]["EndResponse"];
/** An RFC 9457 problem as sessiond writes it. */
export type Problem = components["schemas"]["Problem"];
/**
 * Status of the client's view of this browser:
 * - `loading`: no answer yet;
 * - `signed-in` / `signed-out`: what sessiond last said;
 * - `unavailable`: the last call could not reach sessiond (or it answered
 *   5xx). `session` and `accounts` keep what was last known — sessiond
 *   being down is not a sign-out.
 */
export type Status = "loading" | "signed-in" | "signed-out" | "unavailable";

/** SessiondState is an immutable snapshot; every change makes a new one. */
export interface SessiondState {
  readonly status: Status;
  /** True once sessiond has answered GET /session at least once (200 or 401). */
  readonly isLoaded: boolean;
  /** The active session of this browser, or null. */
  readonly session: Session | null;
  /** Every signed-in account on this browser (the client's active sessions), newest first. */
  readonly accounts: readonly Session[];
  /** The error of the last failed call; cleared by the next successful load. */
  readonly error: SessiondError | null;
}

/** SignOutOptions are Clerk's: which session, and where to go afterwards. */
export interface SignOutOptions {
  /** End exactly this session (one account of a multi-session browser, or another device of the same user). */
  sessionId?: string;
  /** A path or full URL to navigate to after a successful sign-out; sessiond checks it and echoes it. */
  redirectUrl?: string;
}

/**
 * InitialState is what the server already knows when it renders the page
 * (`auth()` of the server entries): with it the first render shows the
 * user (or signed out, or unavailable) and the client revalidates in the
 * background instead of starting in `loading`.
 */
export interface InitialState {
  status: "signed-in" | "signed-out" | "unavailable";
  session: Session | null;
}

/**
 * TokenCache keeps session tokens where an app without cookies can (Expo's
 * SecureStore, the Keychain, a file): Clerk's shape. With it the client
 * sends `Authorization: Bearer` and `credentials: "omit"`, and keeps every
 * account's token under one key, the active one first.
 */
export interface TokenCache {
  getToken(key: string): Promise<string | null | undefined> | string | null | undefined;
  saveToken(key: string, token: string): Promise<void> | void;
  clearToken?(key: string): Promise<void> | void;
}

export interface SessiondOptions {
  /** sessiond's base URL: absolute (`https://auth.example.com`) or a same-origin path (`/api/auth`). */
  url: string;
  /** How to navigate to a redirect URL; defaults to `location.assign`. Pass your router's push. */
  navigate?: (url: string) => void;
  /** The fetch to use; defaults to the global one. */
  fetch?: typeof fetch;
  /** What the server rendered with (see InitialState). */
  initialState?: InitialState;
  /** Called when the page sees the signed-in session change (sign-in, sign-out, switch; this tab, another tab, the event stream, a page back from the back/forward cache), e.g. Next's `router.refresh()` to re-render server content. */
  onSessionChange?: (state: SessiondState) => void;
  /** Bearer tokens instead of cookies (mobile apps); see TokenCache. */
  tokenCache?: TokenCache;
  /**
   * The page's facilities the client uses (fetch, BroadcastChannel, storage
   * events, EventSource, Web Locks, the back/forward cache, navigation);
   * each one left out is the page's own. Tests and unusual hosts (a WebView,
   * an iframe without storage) pass their own. `fetch` and `navigate` above
   * win over the same hooks here.
   */
  env?: Partial<SessiondEnv>;
}

export type Listener = (state: SessiondState) => void;

export interface Sessiond {
  readonly url: string;
  readonly state: SessiondState;
  readonly status: Status;
  readonly session: Session | null;
  readonly accounts: readonly Session[];
  readonly error: SessiondError | null;
  /** Asks sessiond who is signed in on this browser and which accounts it holds. Never rejects: failures land in `state.error`. */
  load(): Promise<SessiondState>;
  /**
   * signOut() ends what sessiond decides: this session in single mode,
   * every account on this browser in multi mode. With `sessionId`,
   * exactly that session. With `redirectUrl`, navigates after success to
   * the URL sessiond echoed. A callback, as in Clerk, runs after success.
   * Rejects with a SessiondError (and then nothing navigates).
   */
  signOut(options?: SignOutOptions): Promise<EndResponse>;
  signOut(callback: (res: EndResponse) => unknown, options?: SignOutOptions): Promise<EndResponse>;
  /** Makes one of this browser's accounts the active one (POST /session/active). */
  setActive(params: { session: Session | string }): Promise<Session>;
  /** Ends every other session of the signed-in user, on every device, keeping this one. */
  signOutOthers(): Promise<EndResponse>;
  /** Token mode (tokenCache): adds a session token your backend handed the app as the active account. */
  addToken(token: string): Promise<SessiondState>;
  /** Calls fn on every state change; returns the function that unsubscribes. While anyone listens, other tabs and sessiond's event stream keep the state fresh. */
  addListener(fn: Listener): () => void;
}
