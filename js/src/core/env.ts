// The page around the browser core, as hooks (the idea of TanStack Query's
// focusManager/onlineManager): the core never reads a global itself, so a
// test hands it fakes and a host without some facility hands it less.

/** The part of a BroadcastChannel the core uses. */
export interface TabChannel {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

/** The part of an EventSource the core uses. */
export interface EventStream {
  readonly readyState: number;
  onopen: ((e: Event) => void) | null;
  onerror: ((e: Event) => void) | null;
  onmessage: ((e: MessageEvent) => void) | null;
  addEventListener(type: string, listener: (e: MessageEvent) => void): void;
  close(): void;
}

/**
 * SessiondEnv is everything the browser core takes from its page. An absent
 * facility is a feature the client does without, never an error.
 */
export interface SessiondEnv {
  /** Every call to sessiond goes through it. */
  fetch: typeof fetch;
  /** Goes to the redirect URL after a sign-out: `location.assign`. */
  navigate: (url: string) => void;
  /** Tells the other tabs of this browser; absent, `storage` carries the news. */
  BroadcastChannel?: new (name: string) => TabChannel;
  /** Where there is no BroadcastChannel: writes a key every other tab hears of (localStorage), and hears of it (the `storage` event); `listen` returns the function that stops listening. */
  storage?: { write(key: string, value: string): void; listen(key: string, fn: () => void): () => void };
  /** sessiond's event stream; absent, other tabs and reloads still keep the state fresh. */
  EventSource?: new (url: string, init?: EventSourceInit) => EventStream;
  /** Web Locks: one tab streams for the whole browser; absent, each tab streams for itself. */
  locks?: { request(name: string, callback: () => Promise<void>): Promise<unknown> };
  /** Calls fn when the page comes back from the back/forward cache; returns the function that stops it. */
  onPageRestore?: (fn: () => void) => () => void;
}

/** browserEnv is the page's own facilities, each one only where the page has it. */
export function browserEnv(): SessiondEnv {
  const w = typeof window === "undefined" ? undefined : window;
  // Listens on window for one event, calling fn when `when` holds; returns the unsubscribe.
  const on = <E extends Event>(type: string, when: (e: E) => boolean) => (fn: () => void) => {
    const handler = (e: Event) => when(e as E) && fn();
    w!.addEventListener(type, handler);
    return () => w!.removeEventListener(type, handler);
  };
  return {
    // Late-bound: whatever fetch and location are when a call happens.
    fetch: (input, init) => fetch(input, init),
    navigate: (url) => window.location.assign(url),
    BroadcastChannel: typeof BroadcastChannel === "undefined" ? undefined : BroadcastChannel,
    EventSource: typeof EventSource === "undefined" ? undefined : EventSource,
    locks: typeof navigator === "undefined" ? undefined : navigator.locks,
    storage: w && {
      write(key, value) {
        try {
          localStorage.setItem(key, value);
        } catch {
          // storage disabled: other tabs catch up through the event stream
        }
      },
      listen: (key, fn) => on<StorageEvent>("storage", (e) => e.key === key)(fn),
    },
    onPageRestore: w && on<PageTransitionEvent>("pageshow", (e) => e.persisted),
  };
}
