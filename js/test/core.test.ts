import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSessiond, SessiondError, type SessiondEnv } from "../src/index.js";
import { FakeBroadcastChannel, FakeEventSource, FakeLocks, FakeSessiond, fakeEnv, settle } from "./fakes.js";

beforeEach(() => {
  FakeBroadcastChannel.open = [];
  FakeEventSource.all = [];
});
afterEach(() => vi.unstubAllGlobals());

/** setup is one browser: a fake sessiond, and tabs on it that share `env` (the fakes, plus what a test changes). */
function setup(mode: "single" | "multi" = "single", url = "/api/auth", env: Partial<SessiondEnv> = {}) {
  const server = new FakeSessiond(mode);
  const navigate = vi.fn();
  const shared = fakeEnv(server, env);
  const tab = () => createSessiond({ url, navigate, env: shared });
  return { server, navigate, tab };
}

describe("load", () => {
  it("signed in: the active session and the accounts on this browser", async () => {
    const { server, tab } = setup("multi");
    const alice = server.signIn("alice");
    const bob = server.signIn("bob");
    const s = tab();
    const st = await s.load();
    expect(st.status).toBe("signed-in");
    expect(s.session?.id).toBe(bob.id);
    expect(s.accounts.map((a) => a.user_id).sort()).toEqual(["alice", "bob"]);
    expect(s.accounts.some((a) => a.id === alice.id)).toBe(true);
    expect(server.requests.map((r) => `${r.method} ${r.url.pathname}`)).toEqual([
      "GET /api/auth/session",
      `GET /api/auth/clients/${bob.client_id}/sessions`,
    ]);
  });

  it("every request carries credentials: include", async () => {
    const { server, tab } = setup("multi");
    const a = server.signIn("alice");
    server.signIn("bob");
    const s = tab();
    await s.load();
    await s.setActive({ session: a });
    await s.signOutOthers();
    await s.signOut({ sessionId: a.id });
    await s.signOut();
    expect(server.requests.length).toBeGreaterThan(6);
    expect(server.requests.every((r) => r.credentials === "include")).toBe(true);
  });

  it("401 on GET /session is signed out", async () => {
    const { tab } = setup();
    const s = tab();
    const st = await s.load();
    expect(st).toMatchObject({ status: "signed-out", isLoaded: true, session: null, accounts: [], error: null });
  });

  it.each([
    ["unreachable (fetch rejects)", "down", 0, "unreachable"],
    ["503 unavailable problem", "503", 503, "unavailable"],
    ["a gateway's bare 502", "502", 502, "unreachable"],
  ] as const)("sessiond down is an error state, not a sign-out: %s", async (_name, outage, status, code) => {
    const { server, tab } = setup();
    const me = server.signIn("alice");
    const s = tab();
    await s.load();
    server.outage = outage;
    const st = await s.load();
    expect(st.status).toBe("unavailable");
    expect(st.session?.id).toBe(me.id); // still signed in as far as the page knows
    expect(st.error).toBeInstanceOf(SessiondError);
    expect(st.error).toMatchObject({ code, status });
    expect(st.error?.isUnavailable).toBe(true);
    server.outage = null;
    expect(await s.load()).toMatchObject({ status: "signed-in", error: null });
  });

  it("while unavailable and listened to, it asks again with backoff and recovers by itself", async () => {
    vi.useFakeTimers();
    try {
      const { server, tab } = setup();
      server.signIn("alice");
      const s = tab();
      s.addListener(() => {});
      server.outage = "down";
      await s.load();
      expect(s.status).toBe("unavailable");
      await vi.advanceTimersByTimeAsync(1100); // first retry after 1 s: still down
      expect(s.status).toBe("unavailable");
      const asked = server.requests.length;
      server.outage = null;
      await vi.advanceTimersByTimeAsync(2100); // second retry after 2 s more
      expect(server.requests.length).toBeGreaterThan(asked);
      expect(s.state).toMatchObject({ status: "signed-in", isLoaded: true, error: null });
    } finally {
      vi.useRealTimers();
    }
  });

  it("down before the first answer: not loaded, not signed out", async () => {
    const { server, tab } = setup();
    server.outage = "down";
    const st = await tab().load();
    expect(st).toMatchObject({ status: "unavailable", isLoaded: false, session: null });
  });

  it("problems carry code, status, detail and request_id", async () => {
    const { server, tab } = setup();
    server.signIn("alice");
    const s = tab();
    await s.load();
    const err = await s.setActive({ session: "sess_01JNOTHERE0000000000000000" }).catch((e) => e);
    expect(err).toBeInstanceOf(SessiondError);
    expect(err).toMatchObject({ code: "session_not_found", status: 404, detail: "session_not_found", request_id: "req_1" });
    expect(s.error?.code).toBe("session_not_found");
    expect(s.status).toBe("signed-in");
  });

  it("a listener that throws is reported, and neither stops the others nor makes load() reject", async () => {
    const { server, tab } = setup();
    server.signIn("alice");
    const reported: (() => void)[] = [];
    vi.stubGlobal("queueMicrotask", (fn: () => void) => reported.push(fn));
    const s = tab();
    const seen: string[] = [];
    s.addListener(() => {
      throw new Error("the app's bug");
    });
    s.addListener((st) => seen.push(st.status));
    const st = await s.load();
    expect(st.status).toBe("signed-in");
    expect(seen).toContain("signed-in");
    expect(reported.length).toBeGreaterThan(0);
    expect(reported[0]).toThrow("the app's bug");
  });
});

describe("signOut", () => {
  it("plain signOut() is DELETE /session: the server decides (single: this session)", async () => {
    const { server, tab } = setup("single");
    const me = server.signIn("alice");
    const s = tab();
    await s.load();
    const res = await s.signOut();
    expect(server.requests.filter((r) => r.method === "DELETE").map((r) => r.url.pathname + r.url.search)).toEqual(["/api/auth/session"]);
    expect(res.ended.map((x) => x.id)).toEqual([me.id]);
    expect(s.state).toMatchObject({ status: "signed-out", session: null });
  });

  it("multi: plain signOut() ends every account on this browser", async () => {
    const { server, tab } = setup("multi");
    server.signIn("alice");
    server.signIn("bob");
    const s = tab();
    await s.load();
    const res = await s.signOut();
    expect(res.ended).toHaveLength(2);
    expect(server.live()).toEqual([]);
    expect(s.status).toBe("signed-out");
  });

  it("signOut({ sessionId }) ends exactly that one; the other account stays and becomes active", async () => {
    const { server, tab } = setup("multi");
    const alice = server.signIn("alice");
    const bob = server.signIn("bob");
    const s = tab();
    await s.load();
    await s.signOut({ sessionId: bob.id });
    const del = server.requests.find((r) => r.method === "DELETE")!;
    expect(del.url.searchParams.get("session_id")).toBe(bob.id);
    expect(server.live().map((x) => x.id)).toEqual([alice.id]);
    expect(s.session?.id).toBe(alice.id);
    expect(s.accounts.map((a) => a.id)).toEqual([alice.id]);
  });

  it("redirectUrl: navigates to the URL sessiond echoed, after the state shows signed out", async () => {
    const { server, tab, navigate } = setup();
    server.signIn("alice");
    const s = tab();
    await s.load();
    navigate.mockImplementation(() => expect(s.status).toBe("signed-out"));
    const res = await s.signOut({ redirectUrl: "/goodbye" });
    expect(server.requests.find((r) => r.method === "DELETE")!.url.searchParams.get("redirect_url")).toBe("/goodbye");
    expect(res.redirect_url).toBe("/goodbye");
    expect(navigate).toHaveBeenCalledExactlyOnceWith("/goodbye");
  });

  it("navigates only to the URL it asked for, and only to a path or an http(s) URL", async () => {
    const cases: { asked: string; answered: string | null; navigates: boolean }[] = [
      // A crafted answer: not what was asked.
      { asked: "/goodbye", answered: "javascript:alert(document.cookie)", navigates: false },
      { asked: "/goodbye", answered: "https://evil.example/", navigates: false },
      // Asked and echoed, but not a path or an http(s) URL.
      { asked: "javascript:alert(1)", answered: null, navigates: false },
      { asked: "data:text/html,hi", answered: null, navigates: false },
      { asked: "//evil.example/", answered: null, navigates: false },
      { asked: "/\\evil.example", answered: null, navigates: false },
      { asked: " /x", answered: null, navigates: false },
      // What sessiond accepts and echoes.
      { asked: "/goodbye?x=1", answered: null, navigates: true },
      { asked: "https://app.test/after", answered: null, navigates: true },
    ];
    for (const c of cases) {
      const { server, tab, navigate } = setup();
      server.allowedRedirect = () => true;
      server.answerRedirect = c.answered;
      server.signIn("alice");
      const s = tab();
      await s.load();
      await s.signOut({ redirectUrl: c.asked });
      if (c.navigates) expect(navigate, c.asked).toHaveBeenCalledExactlyOnceWith(c.asked);
      else expect(navigate, `${c.asked} answered ${c.answered}`).not.toHaveBeenCalled();
    }
  });

  it("a refused redirectUrl is a 400 error: nothing ends, nothing navigates", async () => {
    const { server, tab, navigate } = setup();
    const me = server.signIn("alice");
    const s = tab();
    await s.load();
    const err = await s.signOut({ redirectUrl: "https://evil.example" }).catch((e) => e);
    expect(err).toMatchObject({ code: "invalid_redirect_url", status: 400 });
    expect(navigate).not.toHaveBeenCalled();
    expect(server.live().map((x) => x.id)).toEqual([me.id]);
    expect(s.state).toMatchObject({ status: "signed-in", error: { code: "invalid_redirect_url" } });
  });

  it("Clerk's signOut(callback) runs the callback after success", async () => {
    const { server, tab } = setup();
    server.signIn("alice");
    const s = tab();
    await s.load();
    const cb = vi.fn(() => expect(s.status).toBe("signed-out"));
    await s.signOut(cb);
    expect(cb).toHaveBeenCalledOnce();
  });

  it("sessiond down during sign-out: an error, still signed in", async () => {
    const { server, tab, navigate } = setup();
    server.signIn("alice");
    const s = tab();
    await s.load();
    server.outage = "down";
    await expect(s.signOut({ redirectUrl: "/" })).rejects.toMatchObject({ code: "unreachable" });
    expect(s.state).toMatchObject({ status: "unavailable" });
    expect(s.session).not.toBeNull();
    expect(navigate).not.toHaveBeenCalled();
  });

  it("already signed out elsewhere: rejects unauthenticated and shows signed out without an error", async () => {
    const { server, tab } = setup();
    server.signIn("alice");
    const s = tab();
    await s.load();
    server.active = null;
    await expect(s.signOut()).rejects.toMatchObject({ code: "unauthenticated" });
    expect(s.state).toMatchObject({ status: "signed-out", error: null });
  });
});

describe("setActive and signOutOthers", () => {
  it("setActive({ session }) posts the session_id and loads the new active account", async () => {
    const { server, tab } = setup("multi");
    const alice = server.signIn("alice");
    server.signIn("bob");
    const s = tab();
    await s.load();
    await s.setActive({ session: alice });
    const post = server.requests.find((r) => r.method === "POST")!;
    expect(post.url.pathname).toBe("/api/auth/session/active");
    expect(post.body).toEqual({ session_id: alice.id });
    expect(s.session?.id).toBe(alice.id);
  });

  it("signOutOthers() is DELETE /users/{user}/sessions?except=<own>", async () => {
    const { server, tab } = setup();
    const me = server.signIn("alice");
    const s = tab();
    await s.load();
    await s.signOutOthers();
    const del = server.requests.find((r) => r.method === "DELETE")!;
    expect(del.url.pathname).toBe("/api/auth/users/alice/sessions");
    expect(del.url.searchParams.get("except")).toBe(me.id);
    expect(s.session?.id).toBe(me.id);
  });

  it("an absolute base URL is used as given", async () => {
    const { server, tab } = setup("single", "https://auth.example.test/");
    server.signIn("alice");
    await tab().load();
    expect(server.requests[0].url.href).toBe("https://auth.example.test/session");
  });
});

describe("other tabs", () => {
  it("a sign-out in one tab updates every listening tab without a reload", async () => {
    const { server, tab } = setup("multi");
    server.signIn("alice");
    const a = tab();
    const b = tab();
    const seen = vi.fn();
    b.addListener(seen);
    await Promise.all([a.load(), b.load()]);
    expect(b.status).toBe("signed-in");
    await a.signOut();
    await settle();
    expect(b.status).toBe("signed-out");
    expect(seen).toHaveBeenLastCalledWith(expect.objectContaining({ status: "signed-out" }));
  });

  it("a switch in one tab switches the others", async () => {
    const { server, tab } = setup("multi");
    const alice = server.signIn("alice");
    server.signIn("bob");
    const a = tab();
    const b = tab();
    const off = b.addListener(() => {});
    await Promise.all([a.load(), b.load()]);
    await a.setActive({ session: alice.id });
    await settle();
    expect(b.session?.id).toBe(alice.id);
    off();
    expect(FakeBroadcastChannel.open).toEqual([]);
  });

  it("without BroadcastChannel the storage event carries it", async () => {
    const { server, tab } = setup("single", "/api/auth", { BroadcastChannel: undefined }); // storage: the page's own
    server.signIn("alice");
    const b = tab();
    b.addListener(() => {});
    await b.load();
    const setItem = vi.spyOn(Storage.prototype, "setItem");
    await tab().signOut();
    expect(setItem).toHaveBeenCalled();
    const [key, value] = setItem.mock.calls[0];
    window.dispatchEvent(new StorageEvent("storage", { key, newValue: value }));
    await settle();
    expect(b.status).toBe("signed-out");
  });
});

describe("event stream", () => {
  it("opens GET /session/events with credentials while signed in and listened to; reloads on any event", async () => {
    const { server, tab } = setup();
    server.signIn("alice");
    const s = tab();
    s.addListener(() => {});
    expect(FakeEventSource.all).toHaveLength(0); // not signed in yet
    await s.load();
    expect(FakeEventSource.live()).toHaveLength(1);
    const es = FakeEventSource.all[0];
    expect(es.url).toBe("/api/auth/session/events");
    expect(es.init).toEqual({ withCredentials: true });
    es.open();
    // Signed out from another device: sessiond streams session.revoked.
    server.sessions[0].status = "revoked";
    es.emit("session.revoked", { type: "session.revoked" });
    await settle();
    expect(s.status).toBe("signed-out");
    expect(es.readyState).toBe(2); // closed on sign-out
  });

  it("tolerates the endpoint not existing: no error state, retried later", async () => {
    vi.useFakeTimers();
    try {
      const { server, tab } = setup();
      server.signIn("alice");
      const s = tab();
      s.addListener(() => {});
      await s.load();
      FakeEventSource.all[0].refuse();
      expect(s.state).toMatchObject({ status: "signed-in", error: null });
      expect(FakeEventSource.live()).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(2500);
      expect(FakeEventSource.live()).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it("after a network drop EventSource reconnects itself; on reopen the state is re-loaded", async () => {
    const { server, tab } = setup();
    server.signIn("alice");
    const s = tab();
    s.addListener(() => {});
    await s.load();
    const es = FakeEventSource.all[0];
    es.open();
    es.drop();
    expect(FakeEventSource.all).toHaveLength(1); // no second stream: the browser retries this one
    const before = server.requests.length;
    es.open();
    await settle();
    expect(server.requests.length).toBeGreaterThan(before);
  });

  it("with Web Locks, one tab streams for the browser and tells the others; another takes over when it leaves", async () => {
    const { server, tab } = setup("multi", "/api/auth", { locks: new FakeLocks() });
    server.signIn("alice");
    server.signIn("bob");
    const a = tab();
    const b = tab();
    const offA = a.addListener(() => {});
    b.addListener(() => {});
    await Promise.all([a.load(), b.load()]);
    await settle();
    expect(FakeEventSource.live()).toHaveLength(1);
    // Signed out on another device: the one stream hears it, both tabs show it.
    expect(b.accounts).toHaveLength(2);
    server.sessions[0].status = "revoked"; // alice, the account not active here
    FakeEventSource.live()[0].emit("session.revoked", {});
    await settle();
    expect(a.accounts.map((x) => x.user_id)).toEqual(["bob"]);
    expect(b.accounts.map((x) => x.user_id)).toEqual(["bob"]);
    // The streaming tab goes away: the other one opens the stream.
    const first = FakeEventSource.live()[0];
    offA();
    await settle();
    expect(first.readyState).toBe(2);
    expect(FakeEventSource.live()).toHaveLength(1);
    expect(FakeEventSource.live()[0]).not.toBe(first);
  });

  it("a burst of events costs at most two loads", async () => {
    const { server, tab } = setup("multi");
    server.signIn("alice");
    const s = tab();
    s.addListener(() => {});
    await s.load();
    const before = server.requests.length;
    for (let i = 0; i < 5; i++) FakeEventSource.all[0].emit("session.created", {});
    await settle();
    // two loads, each GET /session + GET /clients/{id}/sessions
    expect(server.requests.length - before).toBe(4);
  });

  it("the last listener leaving closes the stream", async () => {
    const { server, tab } = setup();
    server.signIn("alice");
    const s = tab();
    const off = s.addListener(() => {});
    await s.load();
    off();
    expect(FakeEventSource.live()).toHaveLength(0);
  });
});
