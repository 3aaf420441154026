// Fakes for unit tests only: an in-memory sessiond behind a fake fetch
// (one browser: the cookie jar is the server's `active` and `held`), a
// BroadcastChannel that delivers between instances, and an EventSource
// the test drives by hand. The real thing is covered by the e2e tests.
// They reach the client through its `env` option (fakeEnv), not globals.
import type { Session, SessiondEnv } from "../src/index.js";

export interface Req {
  method: string;
  url: URL;
  credentials: RequestCredentials | undefined;
  body: unknown;
}

let n = 0;
export function mkSession(user: string, client = "client_01JCLIENT0000000000000000AA"): Session {
  n++;
  const id = "sess_01J" + String(n).padStart(23, "0");
  const now = new Date().toISOString();
  return {
    id,
    user_id: user,
    client_id: client,
    status: "active",
    created_at: now,
    last_active_at: now,
    expires_at: now,
    ended_at: null,
    user_agent: null,
    ip_address: null,
    metadata: {},
  };
}

const problem = (status: number, code: string, detail = code) =>
  new Response(JSON.stringify({ type: "about:blank", title: code, status, code, detail, request_id: "req_1" }), {
    status,
    headers: { "Content-Type": "application/problem+json" },
  });
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** FakeSessiond answers like sessiond for one browser (one client) in single or multi mode. */
export class FakeSessiond {
  mode: "single" | "multi";
  sessions: Session[] = [];
  /** The session the active cookie names, or null. */
  active: string | null = null;
  requests: Req[] = [];
  /** "down": fetch rejects; "503": sessiond answers unavailable; "502": a gateway's empty 502. */
  outage: null | "down" | "503" | "502" = null;
  allowedRedirect = (u: string) => u.startsWith("/") && !u.startsWith("//");
  /** When set, the redirect_url a sign-out answers with, whatever was asked (a crafted or broken answer). */
  answerRedirect: string | null = null;

  constructor(mode: "single" | "multi" = "single") {
    this.mode = mode;
  }

  signIn(user: string): Session {
    if (this.mode === "single") this.sessions.forEach((s) => s.status === "active" && (s.status = "replaced"));
    const s = mkSession(user);
    this.sessions.push(s);
    this.active = s.id;
    return s;
  }

  live(): Session[] {
    return this.sessions.filter((s) => s.status === "active");
  }

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input), "http://app.test");
    const method = init?.method ?? "GET";
    this.requests.push({ method, url, credentials: init?.credentials, body: init?.body ? JSON.parse(String(init.body)) : undefined });
    if (this.outage === "down") throw new TypeError("Failed to fetch");
    if (this.outage === "503") return problem(503, "unavailable", "database down");
    if (this.outage === "502") return new Response("", { status: 502 });
    const path = url.pathname.replace(/^\/api\/auth/, "");
    const me = this.sessions.find((s) => s.id === this.active && s.status === "active");
    if (!me) return problem(401, "unauthenticated");
    const end = (list: Session[]) => {
      list.forEach((s) => ((s.status = "ended"), (s.ended_at = new Date().toISOString())));
      return list;
    };
    const redirect = url.searchParams.get("redirect_url");
    if (redirect !== null && !this.allowedRedirect(redirect)) return problem(400, "invalid_redirect_url");
    if (method === "GET" && path === "/session") return json(me);
    if (method === "GET" && path === `/clients/${me.client_id}/sessions`) return json({ data: this.live().reverse(), next_cursor: null });
    if (method === "DELETE" && path === "/session") {
      const sid = url.searchParams.get("session_id");
      let ended: Session[];
      if (sid) {
        const s = this.sessions.find((x) => x.id === sid);
        if (!s) return problem(404, "session_not_found");
        ended = s.status === "active" ? end([s]) : [];
      } else {
        ended = end(this.mode === "single" ? [me] : this.live());
      }
      if (!this.live().some((s) => s.id === this.active)) this.active = this.live().at(-1)?.id ?? null;
      return json({ ended, redirect_url: this.answerRedirect ?? redirect });
    }
    if (method === "POST" && path === "/session/active") {
      const id = (JSON.parse(String(init?.body)) as { session_id: string }).session_id;
      const s = this.live().find((x) => x.id === id);
      if (!s) return problem(404, "session_not_found");
      this.active = s.id;
      return json(s);
    }
    if (method === "DELETE" && path === `/users/${me.user_id}/sessions`) {
      const except = url.searchParams.get("except");
      const others = this.live().filter((s) => s.user_id === me.user_id && s.id !== except);
      others.forEach((s) => (s.status = "revoked"));
      return json({ ended: others, redirect_url: null });
    }
    return problem(404, "not_found");
  };
}

/** FakeBroadcastChannel delivers each message to every other open channel of the same name, asynchronously. */
export class FakeBroadcastChannel {
  static open: FakeBroadcastChannel[] = [];
  onmessage: ((e: MessageEvent) => void) | null = null;
  closed = false;
  constructor(readonly name: string) {
    FakeBroadcastChannel.open.push(this);
  }
  postMessage(data: unknown): void {
    for (const c of FakeBroadcastChannel.open) {
      if (c !== this && c.name === this.name) queueMicrotask(() => c.onmessage?.({ data } as MessageEvent));
    }
  }
  close(): void {
    this.closed = true;
    FakeBroadcastChannel.open = FakeBroadcastChannel.open.filter((c) => c !== this);
  }
}

/** FakeEventSource records how it was opened; the test emits events and errors. */
export class FakeEventSource {
  static all: FakeEventSource[] = [];
  readyState = 0;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  private handlers = new Map<string, ((e: MessageEvent) => void)[]>();
  constructor(readonly url: string, readonly init?: EventSourceInit) {
    FakeEventSource.all.push(this);
  }
  addEventListener(type: string, fn: (e: MessageEvent) => void): void {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), fn]);
  }
  close(): void {
    this.readyState = 2;
  }
  /** open: the server answered 200. */
  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }
  emit(type: string, data: unknown): void {
    this.handlers.get(type)?.forEach((fn) => fn({ data: JSON.stringify(data) } as MessageEvent));
  }
  /** drop: the network went away; EventSource reconnects by itself. */
  drop(): void {
    this.readyState = 0;
    this.onerror?.();
  }
  /** refuse: a non-200 answer (404 while the endpoint does not exist); EventSource gives up. */
  refuse(): void {
    this.readyState = 2;
    this.onerror?.();
  }
  static live(): FakeEventSource[] {
    return FakeEventSource.all.filter((e) => e.readyState !== 2);
  }
}

/** settle lets queued promise chains and microtasks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0));
}

/** FakeLocks is the Web Locks API for one name at a time: requests are granted in order, each when the previous holder's promise settles. */
export class FakeLocks {
  private tails = new Map<string, Promise<unknown>>();
  request(name: string, cb: () => Promise<unknown>): Promise<unknown> {
    const granted = (this.tails.get(name) ?? Promise.resolve()).then(() => cb());
    this.tails.set(name, granted.catch(() => undefined));
    return granted;
  }
}

/** fakeEnv is the page a client sees in a unit test: the fake sessiond's fetch, the fake BroadcastChannel and EventSource, and whatever `extra` adds or takes away. */
export function fakeEnv(server: FakeSessiond, extra: Partial<SessiondEnv> = {}): Partial<SessiondEnv> {
  return { fetch: server.fetch, BroadcastChannel: FakeBroadcastChannel, EventSource: FakeEventSource, ...extra };
}
