// The framework-free core of @sessiond/js: the calls a page makes to
// sessiond (who am I, the accounts on this browser, sign-out, switch), the
// state they lead to, cross-tab sync and the event stream. No runtime
// dependencies; the wire types come from openapi.yaml (src/openapi.d.ts).
//
// createSessiond only wires the concerns together, each in src/core/:
// http (typed calls), store (the state), load (loading and recovery),
// tokens (token mode), tabs (cross-tab sync), stream (the event stream),
// actions (sign-out, switch), env (the page's facilities, injectable) and
// adapters (what React, Vue and the custom element share).
import * as actions from "./core/actions.js";
import { browserEnv, type SessiondEnv } from "./core/env.js";
import { createHttp } from "./core/http.js";
import { createLoader, createRecovery } from "./core/load.js";
import { createStore } from "./core/store.js";
import { createStream } from "./core/stream.js";
import { createTabs } from "./core/tabs.js";
import { createTokens } from "./core/tokens.js";
import type { EndResponse, Listener, Sessiond, SessiondOptions, SignOutOptions } from "./core/types.js";

export type * from "./core/types.js";
export type { EventStream, SessiondEnv, TabChannel } from "./core/env.js";
export { authState, signOutOnce, type AuthState, type SignOutClick } from "./core/adapters.js";
export { SessiondError, type ErrorCode } from "./errors.js";

/** createSessiond makes the client for one sessiond base URL. It does nothing until load() or a listener. */
export function createSessiond(options: SessiondOptions): Sessiond {
  const base = options.url.replace(/\/+$/, "");
  const env: SessiondEnv = { ...browserEnv(), ...options.env };
  const channelName = "sessiond:" + base;
  const tokens = options.tokenCache && createTokens(options.tokenCache);
  const http = createHttp(base, options.fetch ?? env.fetch, tokens);
  const store = createStore(options.initialState, options.onSessionChange, () => {
    stream.sync();
    recovery.sync(store.state.status === "unavailable", store.listeners.size > 0);
  });
  const load = createLoader(http, tokens, store);
  const tabs = createTabs(env, channelName, () => void load());
  const wantStream = () => !tokens && store.listeners.size > 0 && store.state.session !== null && store.state.status === "signed-in";
  const stream = createStream(env, base + "/session/events", channelName, wantStream, () => void load(), tabs.announce);
  const recovery = createRecovery(load);
  const core: actions.Core = { http, store, tokens, load, announce: tabs.announce, navigate: options.navigate ?? env.navigate };

  let stopPageRestore: (() => void) | undefined;
  function addListener(fn: Listener): () => void {
    if (store.listeners.size === 0) {
      tabs.start();
      // A page restored from the back/forward cache shows what it showed when it was left; ask again.
      stopPageRestore = env.onPageRestore?.(() => void load());
    }
    store.listeners.add(fn);
    stream.sync();
    return () => {
      if (!store.listeners.delete(fn) || store.listeners.size > 0) return;
      tabs.stop();
      stopPageRestore?.();
      stream.sync(); // closes the stream and hands the lock on
      recovery.sync(store.state.status === "unavailable", false);
    };
  }

  function signOut(options?: SignOutOptions): Promise<EndResponse>;
  function signOut(callback: (res: EndResponse) => unknown, options?: SignOutOptions): Promise<EndResponse>;
  function signOut(a?: SignOutOptions | ((res: EndResponse) => unknown), b?: SignOutOptions): Promise<EndResponse> {
    return typeof a === "function" ? actions.signOut(core, b ?? {}, a) : actions.signOut(core, a ?? {});
  }

  return {
    url: base,
    get state() {
      return store.state;
    },
    get status() {
      return store.state.status;
    },
    get session() {
      return store.state.session;
    },
    get accounts() {
      return store.state.accounts;
    },
    get error() {
      return store.state.error;
    },
    load,
    signOut,
    setActive: ({ session }) => actions.setActive(core, session),
    signOutOthers: () => actions.signOutOthers(core),
    addToken: (token) => actions.addToken(core, token),
    addListener,
  };
}
