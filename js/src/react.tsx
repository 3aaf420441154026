"use client";
// React adapter: a provider, Clerk's hooks and <SignOutButton>, and an
// account menu. Client components only; nothing here runs on a server.
import {
  Children,
  cloneElement,
  createContext,
  isValidElement,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
  type MouseEvent,
  type ReactElement,
  type ReactNode,
} from "react";
import { authState, createSessiond, signOutOnce, type AuthState, type InitialState, type Sessiond, type SessiondState, type SignOutClick, type SignOutOptions } from "./index.js";

export * from "./index.js";

const SessiondContext = createContext<Sessiond | null>(null);

export interface SessiondProviderProps {
  /** sessiond's base URL (absolute, or a same-origin path such as `/api/auth`). */
  url?: string;
  /** An existing client instead of `url` (tests, or sharing one client with non-React code). */
  client?: Sessiond;
  /** How to navigate after a sign-out with a redirect URL (your router's push); defaults to `location.assign`. */
  navigate?: (url: string) => void;
  /** What the server rendered with: the first render is already signed in, signed out or unavailable (no flash); the client revalidates in the background. */
  initialState?: InitialState;
  /** Called when the page sees the signed-in session change (e.g. Next's `router.refresh()`). */
  onSessionChange?: (state: SessiondState) => void;
  children?: ReactNode;
}

/** SessiondProvider makes one client for its subtree and loads who is signed in. */
export function SessiondProvider({ url, client, navigate, initialState, onSessionChange, children }: SessiondProviderProps) {
  const nav = useRef(navigate);
  nav.current = navigate;
  const changed = useRef(onSessionChange);
  changed.current = onSessionChange;
  const sessiond = useMemo(() => {
    if (client) return client;
    if (!url) throw new Error("SessiondProvider needs url or client");
    return createSessiond({ url, initialState, navigate: (to) => (nav.current ? nav.current(to) : window.location.assign(to)), onSessionChange: (s) => changed.current?.(s) });
  }, [client, url]); // eslint-disable-line react-hooks/exhaustive-deps -- initialState counts once, at creation
  useEffect(() => {
    if (!sessiond.state.isLoaded || initialState) void sessiond.load(); // with initialState: revalidate in the background
  }, [sessiond]); // eslint-disable-line react-hooks/exhaustive-deps
  return <SessiondContext.Provider value={sessiond}>{children}</SessiondContext.Provider>;
}

function useClient(): Sessiond {
  const c = useContext(SessiondContext);
  if (!c) throw new Error("@sessiond/js/react: wrap your app in <SessiondProvider url=...>");
  return c;
}

/** useSessiondState is the current state snapshot; the component re-renders on every change. */
export function useSessiondState(): SessiondState {
  const c = useClient();
  return useSyncExternalStore(c.addListener, () => c.state, () => c.state);
}

/** useSessiond is the client (Clerk's useClerk): signOut, setActive, signOutOthers, session, accounts, error. */
export function useSessiond(): Sessiond {
  useSessiondState();
  return useClient();
}

/** useAuth is Clerk's: `{ isLoaded, isSignedIn, sessionId, userId }`. */
export function useAuth(): AuthState {
  return authState(useSessiondState());
}

export interface SignOutButtonProps {
  /** Path or full URL to go to after a successful sign-out. */
  redirectUrl?: string;
  /** `{ sessionId }` ends exactly that session; `redirectUrl` as above (wins over the prop). */
  signOutOptions?: SignOutOptions;
  /** Runs after a successful sign-out. */
  signOutCallback?: () => unknown;
  /** Your own button (or text); default `<button>Sign out</button>`. */
  children?: ReactNode;
}

/**
 * SignOutButton signs out on click: what sessiond decides by default (this
 * session, or every account in multi mode), exactly `signOutOptions.sessionId`
 * when given. A single child element becomes the button. Failures land in
 * the client's `error` (see useSessiond), not in an unhandled rejection.
 */
export function SignOutButton({ redirectUrl, signOutOptions, signOutCallback, children }: SignOutButtonProps) {
  const c = useClient();
  const click = useRef<SignOutClick>(undefined);
  click.current = { client: c, redirectUrl, signOutOptions, signOutCallback };
  const [signOut] = useState(() => signOutOnce(() => click.current));
  const child = typeof children === "string" || children == null ? null : (Children.only(children) as ReactElement<{ onClick?: (e: MouseEvent) => void }>);
  const onClick = (e: MouseEvent) => {
    child?.props.onClick?.(e);
    signOut();
  };
  if (child && isValidElement(child)) return cloneElement(child, { onClick });
  return <button onClick={onClick}>{children ?? "Sign out"}</button>;
}

export interface UserButtonProps {
  /** Where to go after signing out of one account or all of them. */
  afterSignOutUrl?: string;
}

/**
 * UserButton is the account menu (Clerk's <UserButton> analogue): the
 * accounts signed in on this browser, switch to one, sign out one, and
 * "Sign out of all accounts" when there is more than one. Unstyled; class
 * names start with `sessiond-`.
 */
export function UserButton({ afterSignOutUrl }: UserButtonProps) {
  const c = useSessiond();
  const { session, accounts } = c;
  if (!session) return null;
  const out = (sessionId?: string) => void c.signOut({ sessionId, redirectUrl: afterSignOutUrl }).catch(() => undefined);
  return (
    <details className="sessiond-user-button">
      <summary>{session.user_id}</summary>
      <ul role="menu" className="sessiond-accounts">
        {accounts.map((a) => (
          <li key={a.id} role="menuitem" className={a.id === session.id ? "sessiond-account sessiond-active" : "sessiond-account"}>
            <span>{a.user_id}</span>
            {a.id === session.id ? (
              <em> (active)</em>
            ) : (
              <button onClick={() => void c.setActive({ session: a }).catch(() => undefined)}>Switch to {a.user_id}</button>
            )}
            <button onClick={() => out(a.id)}>Sign out {a.user_id}</button>
          </li>
        ))}
        {accounts.length > 1 && (
          <li role="menuitem">
            <button onClick={() => out()}>Sign out of all accounts</button>
          </li>
        )}
      </ul>
    </details>
  );
}
