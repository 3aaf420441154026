// The state store: one immutable snapshot, the listeners, and which changes
// count as a change of the signed-in session (onSessionChange).
import { SessiondError } from "../errors.js";
import type { InitialState, Listener, SessiondState } from "./types.js";

export interface Store {
  readonly state: SessiondState;
  readonly listeners: Set<Listener>;
  /** Makes the next snapshot, tells every listener, then runs `after` (the store's effects: the stream, the recovery). */
  set(next: Partial<SessiondState>): void;
}

export function createStore(init: InitialState | undefined, onSessionChange: ((state: SessiondState) => void) | undefined, after: () => void): Store {
  let state: SessiondState = init
    ? { status: init.status, isLoaded: init.status !== "unavailable", session: init.session, accounts: init.session ? [init.session] : [], error: null }
    : { status: "loading", isLoaded: false, session: null, accounts: [], error: null };
  // The session the page last knew as signed in (null: signed out;
  // undefined: not known yet), to tell onSessionChange about real changes only.
  let known: string | null | undefined = init && init.status !== "unavailable" ? (init.session?.id ?? null) : undefined;
  const listeners = new Set<Listener>();
  return {
    get state() {
      return state;
    },
    listeners,
    set(next) {
      state = { ...state, ...next };
      // A listener that throws is the app's bug: reported as uncaught,
      // never able to stop the other listeners, the store's effects, or
      // make load() reject.
      listeners.forEach((fn) => {
        try {
          fn(state);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      });
      if (state.status === "signed-in" || state.status === "signed-out") {
        const now = state.session?.id ?? null;
        if (known !== undefined && now !== known) onSessionChange?.(state);
        known = now;
      }
      after();
    },
  };
}

/** asError makes any failure a SessiondError (a bug or a broken answer is `invalid_response`). */
export function asError(err: unknown): SessiondError {
  return err instanceof SessiondError ? err : new SessiondError("invalid_response", 0, String(err));
}

/** failedState is what a failure changes: sessiond down is `unavailable` (the session stays what it was), anything else only `error`. */
export function failedState(err: unknown): Partial<SessiondState> {
  const e = asError(err);
  return e.isUnavailable ? { status: "unavailable", error: e } : { error: e };
}
