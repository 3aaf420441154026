// sessiond's event stream (GET /session/events): any event means "load
// again". One stream per browser, not per tab (a browser opens at most six
// HTTP/1.1 connections to a host): where Web Locks exist (secure contexts),
// the tab holding the lock streams and tells the other tabs; when it
// closes, another tab takes the lock over. Elsewhere each tab streams for
// itself.
import type { EventStream, SessiondEnv } from "./env.js";

const EVENT_TYPES = ["session.created", "session.ended", "session.revoked", "session.replaced", "session.evicted", "session.expired"];

export interface Stream {
  /** Opens the stream while `want()` holds (and the page can stream); otherwise closes it and hands the lock on. */
  sync(): void;
}

/** createStream streams from `url` while `want()`; on every event (and back after a drop) it calls `load`, and `announce` when the other tabs rely on this one. */
export function createStream(env: Pick<SessiondEnv, "EventSource" | "locks">, url: string, lockName: string, want: () => boolean, load: () => void, announce: () => void): Stream {
  const { EventSource: Source, locks } = env;
  let stream: EventStream | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let retryDelay = 2000;
  let lockState: "none" | "waiting" | "held" = "none";
  let releaseLock: (() => void) | null = null;

  function sync(): void {
    if (!Source || !want()) {
      close();
      releaseLock?.();
      return;
    }
    if (locks && lockState !== "held") {
      if (lockState === "none") {
        lockState = "waiting";
        void locks
          .request(lockName, () => {
            lockState = "held";
            const held = new Promise<void>((resolve) => (releaseLock = resolve));
            sync();
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
    open(Source);
  }

  function open(Source: NonNullable<SessiondEnv["EventSource"]>): void {
    const es = new Source(url, { withCredentials: true });
    stream = es;
    let dropped = false;
    const onEvent = () => {
      if (locks) announce(); // the other tabs have no stream of their own
      load();
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
        sync();
      }, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 60000);
    };
  }

  function close(): void {
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    stream?.close();
    stream = null;
  }

  return { sync };
}
