// The core's environment hooks and the helpers the adapters share.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { authState, createSessiond, signOutOnce, type SessiondState } from "../src/index.js";
import { FakeBroadcastChannel, FakeEventSource, FakeLocks, FakeSessiond, fakeEnv, settle } from "./fakes.js";

beforeEach(() => {
  FakeBroadcastChannel.open = [];
  FakeEventSource.all = [];
});
afterEach(() => vi.unstubAllGlobals());

class Forbidden {
  constructor() {
    throw new Error("the core read a global it was given a hook for");
  }
}

describe("env", () => {
  it("hooks win over the page's globals: fetch, BroadcastChannel, EventSource, locks, the back/forward cache", async () => {
    vi.stubGlobal("fetch", () => Promise.reject(new Error("global fetch")));
    vi.stubGlobal("BroadcastChannel", Forbidden);
    vi.stubGlobal("EventSource", Forbidden);
    const server = new FakeSessiond();
    server.signIn("alice");
    let restore: (() => void) | undefined;
    const stopRestore = vi.fn();
    const locks = new FakeLocks();
    const request = vi.spyOn(locks, "request");
    const c = createSessiond({
      url: "/api/auth",
      env: fakeEnv(server, { locks, onPageRestore: (fn) => ((restore = fn), stopRestore) }),
    });
    const off = c.addListener(() => undefined);
    await c.load();
    await settle();
    expect(c.status).toBe("signed-in");
    expect(FakeBroadcastChannel.open).toHaveLength(1);
    expect(FakeEventSource.live()).toHaveLength(1);
    expect(request).toHaveBeenCalledWith("sessiond:/api/auth", expect.any(Function));
    server.live().forEach((s) => (s.status = "ended"));
    restore!();
    await settle();
    expect(c.status).toBe("signed-out");
    off();
    expect(stopRestore).toHaveBeenCalledOnce();
    expect(FakeBroadcastChannel.open).toEqual([]);
  });

  it("the fetch and navigate options win over env's", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    const navigate = vi.fn();
    const envNavigate = vi.fn();
    const c = createSessiond({ url: "/api/auth", fetch: server.fetch, navigate, env: { fetch: () => Promise.reject(new Error("env fetch")), navigate: envNavigate } });
    await c.signOut({ redirectUrl: "/bye" });
    expect(navigate).toHaveBeenCalledExactlyOnceWith("/bye");
    expect(envNavigate).not.toHaveBeenCalled();
  });

  it("without hooks the client uses the page's globals", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    vi.stubGlobal("fetch", server.fetch);
    vi.stubGlobal("BroadcastChannel", FakeBroadcastChannel);
    vi.stubGlobal("EventSource", FakeEventSource);
    const c = createSessiond({ url: "/api/auth" });
    c.addListener(() => undefined);
    await c.load();
    expect(server.requests[0].url.pathname).toBe("/api/auth/session");
    expect(FakeBroadcastChannel.open.map((ch) => ch.name)).toEqual(["sessiond:/api/auth"]);
    expect(FakeEventSource.live().map((es) => es.url)).toEqual(["/api/auth/session/events"]);
  });

  it("path parameters are escaped: a user ID with a slash stays one segment", async () => {
    const server = new FakeSessiond();
    server.signIn("team/alice");
    const c = createSessiond({ url: "/api/auth", env: fakeEnv(server) });
    await c.load();
    await c.signOutOthers().catch(() => undefined);
    expect(server.requests.at(-1)!.url.pathname).toBe("/api/auth/users/team%2Falice/sessions");
  });
});

describe("authState", () => {
  const session = new FakeSessiond().signIn("ada");
  const state = (s: Partial<SessiondState>): SessiondState => ({ status: "loading", isLoaded: false, session: null, accounts: [], error: null, ...s });
  it.each([
    ["not loaded", state({}), { isLoaded: false, isSignedIn: undefined, sessionId: undefined, userId: undefined }],
    ["unavailable before the first answer", state({ status: "unavailable" }), { isLoaded: false, isSignedIn: undefined, sessionId: undefined, userId: undefined }],
    ["signed out", state({ status: "signed-out", isLoaded: true }), { isLoaded: true, isSignedIn: false, sessionId: null, userId: null }],
    ["signed in", state({ status: "signed-in", isLoaded: true, session }), { isLoaded: true, isSignedIn: true, sessionId: session.id, userId: "ada" }],
    ["unavailable after signed in: still signed in", state({ status: "unavailable", isLoaded: true, session }), { isLoaded: true, isSignedIn: true, sessionId: session.id, userId: "ada" }],
  ])("%s", (_name, s, want) => {
    expect(authState(s)).toEqual(want);
  });
});

describe("signOutOnce", () => {
  function client(mode: "single" | "multi" = "single") {
    const server = new FakeSessiond(mode);
    const navigate = vi.fn();
    return { server, navigate, c: createSessiond({ url: "/api/auth", navigate, env: fakeEnv(server) }) };
  }

  it("clicks while one sign-out runs do nothing; afterwards a click signs out again", async () => {
    const { server, c } = client("multi");
    const alice = server.signIn("alice");
    const bob = server.signIn("bob");
    let sessionId = alice.id;
    const busy: boolean[] = [];
    const click = signOutOnce(() => ({ client: c, signOutOptions: { sessionId }, onBusy: (b) => busy.push(b) }));
    click();
    click();
    await settle();
    expect(server.requests.filter((r) => r.method === "DELETE")).toHaveLength(1);
    sessionId = bob.id;
    click();
    await settle();
    expect(server.requests.filter((r) => r.method === "DELETE").map((r) => r.url.searchParams.get("session_id"))).toEqual([alice.id, bob.id]);
    expect(busy).toEqual([true, false, true, false]);
  });

  it("signOutOptions.redirectUrl wins over redirectUrl; onSignedOut hears the answer before navigation, signOutCallback after", async () => {
    const { server, c, navigate } = client();
    server.signIn("alice");
    const order: string[] = [];
    navigate.mockImplementation(() => order.push("navigate"));
    signOutOnce(() => ({
      client: c,
      redirectUrl: "/prop",
      signOutOptions: { redirectUrl: "/option" },
      onSignedOut: (res) => order.push("answer " + res.redirect_url),
      signOutCallback: () => order.push("callback"),
    }))();
    await settle();
    expect(order).toEqual(["answer /option", "navigate", "callback"]);
  });

  it("a failure goes to onError and the client's error, never to an unhandled rejection", async () => {
    const { server, c } = client();
    server.signIn("alice");
    await c.load();
    server.outage = "down";
    const onError = vi.fn();
    const callback = vi.fn();
    signOutOnce(() => ({ client: c, onError, signOutCallback: callback }))();
    await settle();
    expect(onError).toHaveBeenCalledExactlyOnceWith(expect.objectContaining({ code: "unreachable" }));
    expect(callback).not.toHaveBeenCalled();
    expect(c.error?.code).toBe("unreachable");
    signOutOnce(() => ({ client: c }))(); // no onError: still no unhandled rejection (vitest fails the run on one)
    await settle();
  });

  it("click() giving nothing does nothing", async () => {
    const { server } = client();
    server.signIn("alice");
    signOutOnce(() => undefined)();
    await settle();
    expect(server.requests).toEqual([]);
  });
});
