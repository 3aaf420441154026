// What every framework adapter (React, Vue, the custom element) does the
// same way, written once: Clerk's auth shape, and the sign-out button's
// click handler.
import type { EndResponse, Sessiond, SessiondState, SignOutOptions } from "./types.js";

/** AuthState is Clerk's `useAuth()`: everything undefined until loaded, null when signed out. */
export interface AuthState {
  isLoaded: boolean;
  /** undefined until loaded. */
  isSignedIn: boolean | undefined;
  /** The active session's ID; null when signed out, undefined until loaded. */
  sessionId: string | null | undefined;
  userId: string | null | undefined;
}

/** authState maps a state snapshot to Clerk's auth shape. */
export function authState(s: SessiondState): AuthState {
  if (!s.isLoaded) return { isLoaded: false, isSignedIn: undefined, sessionId: undefined, userId: undefined };
  return { isLoaded: true, isSignedIn: s.session !== null, sessionId: s.session?.id ?? null, userId: s.session?.user_id ?? null };
}

/** SignOutClick is what one click of a sign-out button does. */
export interface SignOutClick {
  client: Sessiond;
  /** Path or full URL to go to after a successful sign-out. */
  redirectUrl?: string;
  /** `{ sessionId }` ends exactly that session; its `redirectUrl` wins over the one above. */
  signOutOptions?: SignOutOptions;
  /** Runs after a successful sign-out (once any navigation was asked for). */
  signOutCallback?: () => unknown;
  /** Runs with sessiond's answer before any navigation. */
  onSignedOut?: (res: EndResponse) => unknown;
  /** Hears of a failure; it is in the client's `error` either way, never an unhandled rejection. */
  onError?: (err: unknown) => void;
  /** Hears when a sign-out starts (true) and settles (false). */
  onBusy?: (busy: boolean) => void;
}

/**
 * signOutOnce makes a sign-out button's click handler: each click reads
 * what to do from `click()` (undefined: nothing), and while one sign-out
 * runs further clicks do nothing, so a double click, or a handler bound
 * twice, signs out once.
 */
export function signOutOnce(click: () => SignOutClick | undefined): () => void {
  let busy = false;
  return () => {
    if (busy) return;
    const c = click();
    if (!c) return;
    busy = true;
    c.onBusy?.(true);
    const options = { redirectUrl: c.signOutOptions?.redirectUrl ?? c.redirectUrl, sessionId: c.signOutOptions?.sessionId };
    c.client
      .signOut((res) => c.onSignedOut?.(res), options)
      .then(() => c.signOutCallback?.())
      .catch((err) => c.onError?.(err))
      .finally(() => {
        busy = false;
        c.onBusy?.(false);
      });
  };
}
