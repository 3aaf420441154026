// The framework-free core of @sessiond/js: the calls a page makes to
// sessiond (who am I, the accounts on this browser, sign-out, switch), the
// state they lead to, cross-tab sync and the event stream. No runtime
// dependencies; the wire types come from openapi.yaml (src/openapi.d.ts).
import type { components } from "./openapi.js";

/** A session object as sessiond answers it. */
export type Session = components["schemas"]["Session"];
/** The answer of every call that ends sessions. */
export type EndResponse = components["schemas"]["EndResponse"];
/** An RFC 9457 problem as sessiond writes it. */
export type Problem = components["schemas"]["Problem"];

export { SessiondError, type ErrorCode } from "./errors.js";
import { SessiondError } from "./errors.js";

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

const EVENT_TYPES = ["session.created", "session.ended", "session.revoked", "session.replaced", "session.evicted", "session.expired"];

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

/** createSessiond makes the client for one sessiond base URL. It does nothing until load() or a listener. */
export function createSessiond(options: SessiondOptions): Sessiond {
  const base = options.url.replace(/\/+$/, "");
  const doFetch: typeof fetch = options.fetch ?? ((input, init) => fetch(input, init));
  const navigate = options.navigate ?? ((to: string) => window.location.assign(to));
  const channelName = "sessiond:" + base;
  const tabId = Math.random().toString(36).slice(2);

  const init = options.initialState;
  let state: SessiondState = init
    ? { status: init.status, isLoaded: init.status !== "unavailable", session: init.session, accounts: init.session ? [init.session] : [], error: null }
    : { status: "loading", isLoaded: false, session: null, accounts: [], error: null };
  // The session the page last knew as signed in (null: signed out;
  // undefined: not known yet), to tell onSessionChange about real changes only.
  let known: string | null | undefined = init && init.status !== "unavailable" ? (init.session?.id ?? null) : undefined;
  const listeners = new Set<Listener>();
  let loadSeq = 0;

  function set(next: Partial<SessiondState>): void {
    state = { ...state, ...next };
    listeners.forEach((fn) => fn(state));
    if (state.status === "signed-in" || state.status === "signed-out") {
      const now = state.session?.id ?? null;
      if (known !== undefined && now !== known) options.onSessionChange?.(state);
      known = now;
    }
    syncStream();
    syncRetry();
  }

  // While sessiond is unavailable and someone listens, ask again with
  // backoff (1 s doubling to 30 s), so the page recovers by itself.
  let recoverTimer: ReturnType<typeof setTimeout> | null = null;
  let recoverDelay = 1000;
  function syncRetry(): void {
    if (state.status !== "unavailable" || listeners.size === 0) {
      if (recoverTimer) clearTimeout(recoverTimer);
      recoverTimer = null;
      if (state.status !== "unavailable") recoverDelay = 1000;
      return;
    }
    if (recoverTimer) return;
    recoverTimer = setTimeout(() => {
      recoverTimer = null;
      void load();
    }, recoverDelay);
    recoverDelay = Math.min(recoverDelay * 2, 30000);
  }

  async function call<T>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
    let res: Response;
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    token ??= tokens?.[0];
    if (token) headers.Authorization = "Bearer " + token;
    try {
      res = await doFetch(base + path, {
        method,
        credentials: cache ? "omit" : "include",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
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
      return json as T;
    }
    if (json && typeof json.code === "string") {
      throw new SessiondError(json.code, res.status, String(json.detail ?? ""), json.request_id ?? res.headers.get("X-Request-ID"), json.errors ?? null);
    }
    const gateway = res.status === 502 || res.status === 503 || res.status === 504;
    throw new SessiondError(gateway ? "unreachable" : "invalid_response", res.status, `sessiond answered ${res.status} without a problem body`);
  }

  function fail(err: unknown): never {
    const e = err instanceof SessiondError ? err : new SessiondError("invalid_response", 0, String(err));
    set(e.isUnavailable ? { status: "unavailable", error: e } : { error: e });
    throw e;
  }

  // load() coalesces: while one load runs, later calls share one more that
  // starts after it, so a burst of events or messages costs two requests
  // and every caller still gets a state read after it asked.
  let running: Promise<SessiondState> | null = null;
  let queued: Promise<SessiondState> | null = null;
  function load(): Promise<SessiondState> {
    if (!running) {
      running = fetchState().finally(() => (running = null));
      return running;
    }
    queued ??= running.then(() => {
      queued = null;
      return load();
    });
    return queued;
  }

  // --- token mode (tokenCache) ------------------------------------------------

  const cache = options.tokenCache;
  const cacheKey = "sessiond_tokens";
  let tokens: string[] | null = null; // the cached tokens, active first; null until read
  const tokenOf = new Map<string, string>(); // session id → token, from the last load

  async function readTokens(): Promise<string[]> {
    if (tokens) return tokens;
    let raw: string | null | undefined;
    try {
      raw = await cache!.getToken(cacheKey);
    } catch (err) {
      throw new SessiondError("storage_unavailable", 0, `the token cache could not be read: ${err instanceof Error ? err.message : String(err)}`);
    }
    return (tokens = (raw ?? "").split(" ").filter(Boolean));
  }

  async function saveTokens(list: string[]): Promise<void> {
    tokens = list;
    if (list.length) await cache!.saveToken(cacheKey, list.join(" "));
    else await cache!.clearToken?.(cacheKey);
  }

  // Every account in the cache, the active one first: one GET /session per
  // token (they may be on different clients); dead tokens are dropped.
  async function tokenState(): Promise<Partial<SessiondState>> {
    const list = await readTokens();
    const live: string[] = [];
    const accounts: Session[] = [];
    let session: Session | null = null;
    for (const t of list) {
      try {
        const s = await call<Session>("GET", "/session", undefined, t);
        live.push(t);
        accounts.push(s);
        tokenOf.set(s.id, t);
        if (t === list[0]) session = s;
      } catch (err) {
        if (!(err instanceof SessiondError) || err.code !== "unauthenticated") throw err;
      }
    }
    if (live.length !== list.length) await saveTokens(live);
    return { status: session ? "signed-in" : "signed-out", isLoaded: true, session, accounts, error: null };
  }

  async function cookieState(): Promise<Partial<SessiondState>> {
    const session = await call<Session>("GET", "/session");
    let accounts: readonly Session[] = [session];
    try {
      const list = await call<{ data: Session[] }>("GET", `/clients/${encodeURIComponent(session.client_id)}/sessions?limit=100`);
      if (Array.isArray(list.data) && list.data.some((s) => s.id === session.id)) accounts = list.data;
    } catch (err) {
      if (err instanceof SessiondError && err.isUnavailable) throw err;
      // 401/404: the session ended between the two calls; the next event or load corrects it
    }
    return { status: "signed-in", isLoaded: true, session, accounts, error: null };
  }

  async function fetchState(): Promise<SessiondState> {
    const seq = ++loadSeq;
    let next: Partial<SessiondState>;
    try {
      next = cache ? await tokenState() : await cookieState();
    } catch (err) {
      if (err instanceof SessiondError && err.code === "unauthenticated") {
        next = { status: "signed-out", isLoaded: true, session: null, accounts: [], error: null };
      } else {
        const e = err instanceof SessiondError ? err : new SessiondError("invalid_response", 0, String(err));
        next = e.isUnavailable ? { status: "unavailable", error: e } : { error: e };
      }
    }
    if (seq === loadSeq) set(next);
    return state;
  }

  // --- other tabs -------------------------------------------------------

  let channel: BroadcastChannel | null = null;
  const storageKey = channelName;

  function announce(): void {
    const msg = { from: tabId, at: Date.now() };
    if (typeof BroadcastChannel !== "undefined") {
      const ch = channel ?? new BroadcastChannel(channelName);
      ch.postMessage(msg);
      if (ch !== channel) ch.close();
    } else if (typeof localStorage !== "undefined") {
      try {
        localStorage.setItem(storageKey, JSON.stringify(msg));
      } catch {
        // storage disabled: other tabs catch up through the event stream
      }
    }
  }

  function onStorage(e: StorageEvent): void {
    if (e.key === storageKey) void load();
  }

  function startTabs(): void {
    if (typeof BroadcastChannel !== "undefined") {
      channel = new BroadcastChannel(channelName);
      channel.onmessage = () => void load();
    } else if (typeof window !== "undefined") {
      window.addEventListener("storage", onStorage);
    }
  }

  function stopTabs(): void {
    if (channel) {
      channel.close();
      channel = null;
    } else if (typeof window !== "undefined") {
      window.removeEventListener("storage", onStorage);
    }
  }

  // --- sessiond's event stream ---------------------------------------------

  let stream: EventSource | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let retryDelay = 2000;

  // One stream per browser, not per tab (a browser opens at most six
  // HTTP/1.1 connections to a host): where the Web Locks API exists (secure
  // contexts), the tab holding the lock streams and tells the other tabs;
  // when it closes, another tab takes the lock over. Elsewhere each tab
  // streams for itself.
  const locks: LockManager | undefined = typeof navigator !== "undefined" ? navigator.locks : undefined;
  let lockState: "none" | "waiting" | "held" = "none";
  let releaseLock: (() => void) | null = null;

  function wantStream(): boolean {
    return !cache && listeners.size > 0 && state.session !== null && state.status === "signed-in" && typeof EventSource !== "undefined";
  }

  function syncStream(): void {
    if (!wantStream()) {
      closeStream();
      releaseLock?.();
      return;
    }
    if (locks && lockState !== "held") {
      if (lockState === "none") {
        lockState = "waiting";
        void locks
          .request(channelName, () => {
            lockState = "held";
            const held = new Promise<void>((resolve) => (releaseLock = resolve));
            syncStream();
            return held;
          })
          .catch(() => undefined)
          .finally(() => {
            lockState = "none";
            releaseLock = null;
          });
      }
      return;
    }
    if (stream || retryTimer) return;
    const es = new EventSource(base + "/session/events", { withCredentials: true });
    stream = es;
    let dropped = false;
    const onEvent = () => {
      if (locks) announce(); // the other tabs have no stream of their own
      void load();
    };
    for (const t of EVENT_TYPES) es.addEventListener(t, onEvent);
    es.onmessage = onEvent;
    es.onopen = () => {
      retryDelay = 2000;
      if (dropped) onEvent(); // back after a drop: catch up on what the stream may have missed
      dropped = false;
    };
    es.onerror = () => {
      dropped = true;
      if (es.readyState !== 2 /* CLOSED */) return; // EventSource reconnects by itself
      // Refused for good (404 while the endpoint does not exist, 401, a gateway's 502):
      // no error state; try again later, for as long as the page is signed in.
      es.close();
      if (stream === es) stream = null;
      retryTimer = setTimeout(() => {
        retryTimer = null;
        syncStream();
      }, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 60000);
    };
  }

  function closeStream(): void {
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    stream?.close();
    stream = null;
  }

  // --- actions ---------------------------------------------------------------

  async function signOut(a?: SignOutOptions | ((res: EndResponse) => unknown), b?: SignOutOptions): Promise<EndResponse> {
    const callback = typeof a === "function" ? a : undefined;
    const opts = (typeof a === "function" ? b : a) ?? {};
    const q = new URLSearchParams();
    if (opts.sessionId) q.set("session_id", opts.sessionId);
    if (opts.redirectUrl) q.set("redirect_url", opts.redirectUrl);
    const qs = q.toString();
    let res: EndResponse;
    try {
      if (cache) await readTokens().catch(fail);
      res = await call<EndResponse>("DELETE", "/session" + (qs ? "?" + qs : ""));
      if (cache) {
        const ended = new Set(res.ended.map((e) => tokenOf.get(e.id)));
        await saveTokens(tokens!.filter((t) => !ended.has(t)));
      }
    } catch (err) {
      if (err instanceof SessiondError && err.code === "unauthenticated") {
        // Already signed out (another tab, another device): show that, no error state.
        await load();
        throw err;
      }
      fail(err);
    }
    announce();
    await load();
    await callback?.(res);
    // Only ever the URL this call asked for, once sessiond accepted and
    // echoed it (a refused one was a 400 above), and only a path or an
    // http(s) URL: an answer naming another URL (a javascript: one, say) is
    // not followed.
    if (opts.redirectUrl && res.redirect_url === opts.redirectUrl && navigable(opts.redirectUrl)) navigate(opts.redirectUrl);
    return res;
  }

  async function setActive({ session }: { session: Session | string }): Promise<Session> {
    const id = typeof session === "string" ? session : session.id;
    let res: Session;
    const token = tokenOf.get(id);
    if (cache && tokens) {
      // Token mode: switching is local, the token moves to the front.
      const found = state.accounts.find((a) => a.id === id);
      if (!token || !found) fail(new SessiondError("session_not_found", 404, "no such account in the token cache"));
      await saveTokens([token, ...tokens.filter((t) => t !== token)]);
      await load();
      return found;
    }
    try {
      res = await call<Session>("POST", "/session/active", { session_id: id });
    } catch (err) {
      fail(err);
    }
    announce();
    await load();
    return res;
  }

  async function signOutOthers(): Promise<EndResponse> {
    const own = state.session;
    if (!own) fail(new SessiondError("unauthenticated", 401, "not signed in"));
    let res: EndResponse;
    try {
      res = await call<EndResponse>("DELETE", `/users/${encodeURIComponent(own.user_id)}/sessions?except=${encodeURIComponent(own.id)}`);
    } catch (err) {
      fail(err);
    }
    announce();
    await load();
    return res;
  }

  async function addToken(token: string): Promise<SessiondState> {
    if (!cache) throw new Error("addToken needs a tokenCache");
    const list = await readTokens().catch(fail);
    await saveTokens([token, ...list.filter((t) => t !== token)]);
    return load();
  }

  // A page restored from the back/forward cache shows what it showed when
  // it was left; ask again.
  function onPageShow(e: PageTransitionEvent): void {
    if (e.persisted) void load();
  }

  function addListener(fn: Listener): () => void {
    if (listeners.size === 0) {
      startTabs();
      if (typeof window !== "undefined") window.addEventListener("pageshow", onPageShow);
    }
    listeners.add(fn);
    syncStream();
    return () => {
      if (!listeners.delete(fn)) return;
      if (listeners.size === 0) {
        stopTabs();
        if (typeof window !== "undefined") window.removeEventListener("pageshow", onPageShow);
        syncStream(); // closes the stream and hands the lock on
        syncRetry();
      }
    };
  }

  return {
    url: base,
    get state() {
      return state;
    },
    get status() {
      return state.status;
    },
    get session() {
      return state.session;
    },
    get accounts() {
      return state.accounts;
    },
    get error() {
      return state.error;
    },
    load,
    signOut: signOut as Sessiond["signOut"],
    setActive,
    signOutOthers,
    addToken,
    addListener,
  };
}
