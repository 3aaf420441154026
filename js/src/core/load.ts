// Loading who is signed in: one load at a time, a burst of requests
// coalesced, a late answer never overwriting a newer one, and recovery with
// backoff while sessiond is unavailable.
import { SessiondError } from "../errors.js";
import type { Http } from "./http.js";
import { failedState, type Store } from "./store.js";
import { tokenAccounts, type Tokens } from "./tokens.js";
import type { Session, SessiondState } from "./types.js";

/**
 * cookieAccounts is the browser's active session and the accounts on its
 * client (the account switcher). Given the session the page already shows
 * (the server's initialState), it checks it with one call instead of two:
 * the client's account list authenticates the same cookie (401: signed
 * out) and holds that session as sessiond has it now, so a server-rendered
 * page costs sessiond one GET /session, the server's. When the list does
 * not hold it active (another account, another client), the full check.
 */
async function cookieAccounts(http: Http, known?: Session): Promise<Partial<SessiondState>> {
  let session = known ?? (await http.call("GET", "/session"));
  let accounts: readonly Session[] = [session];
  try {
    const list = await http.call("GET", "/clients/{id}/sessions", { path: { id: session.client_id }, query: { limit: 100 } });
    const listed = Array.isArray(list.data) ? list.data.find((s) => s.id === session.id) : undefined;
    if (listed?.status === "active") [session, accounts] = [listed, list.data];
    else if (known) return cookieAccounts(http);
  } catch (err) {
    if (err instanceof SessiondError && (err.isUnavailable || (known && err.code === "unauthenticated"))) throw err;
    if (known) return cookieAccounts(http);
    // 401/404: the session ended between the two calls; the next event or load corrects it
  }
  return { status: "signed-in", isLoaded: true, session, accounts, error: null };
}

/**
 * createLoader gives load(): it asks sessiond and sets the store, and never
 * rejects (failures land in `state.error`). It coalesces: while one load
 * runs, later calls share one more that starts after it, so a burst of
 * events or messages costs two requests and every caller still gets a
 * state read after it asked.
 */
export function createLoader(http: Http, tokens: Tokens | undefined, store: Store): () => Promise<SessiondState> {
  // The session the server rendered with, revalidated by the first load alone.
  let rendered = store.state.status === "signed-in" ? store.state.session ?? undefined : undefined;
  let seq = 0;
  let running: Promise<SessiondState> | null = null;
  let queued: Promise<SessiondState> | null = null;

  async function fetchState(): Promise<SessiondState> {
    const mine = ++seq;
    let next: Partial<SessiondState>;
    try {
      const known = rendered;
      rendered = undefined;
      next = tokens ? await tokenAccounts(http, tokens) : await cookieAccounts(http, known);
    } catch (err) {
      next =
        err instanceof SessiondError && err.code === "unauthenticated"
          ? { status: "signed-out", isLoaded: true, session: null, accounts: [], error: null }
          : failedState(err);
    }
    if (mine === seq) store.set(next);
    return store.state;
  }

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
  return load;
}

/**
 * createRecovery asks again while sessiond is unavailable and someone
 * listens, with backoff (1 s doubling to 30 s), so the page recovers by
 * itself.
 */
export function createRecovery(load: () => unknown): { sync(unavailable: boolean, listened: boolean): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let delay = 1000;
  return {
    sync(unavailable, listened) {
      if (!unavailable || !listened) {
        if (timer) clearTimeout(timer);
        timer = null;
        if (!unavailable) delay = 1000;
        return;
      }
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        void load();
      }, delay);
      delay = Math.min(delay * 2, 30000);
    },
  };
}
