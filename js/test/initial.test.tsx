// No flash: providers that take the server's initialState render the user
// (or signed out, or unavailable) on the first render — on the server and
// in the browser — and revalidate in the background; onSessionChange fires
// on a real change only; a page back from the back/forward cache re-checks.
import { act } from "react";
import { createRoot } from "react-dom/client";
import { renderToString } from "react-dom/server";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSSRApp, defineComponent, h } from "vue";
import { renderToString as vueToString } from "vue/server-renderer";
import { createSessiond, type InitialState } from "../src/index.js";
import { SessiondProvider, useAuth, useSessiondState } from "../src/react.js";
import { sessiondPlugin, useAuth as useVueAuth } from "../src/vue.js";
import { FakeBroadcastChannel, FakeEventSource, FakeSessiond, fakeEnv, settle } from "./fakes.js";

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

beforeEach(() => {
  FakeBroadcastChannel.open = [];
});
afterEach(() => vi.unstubAllGlobals());

function Who() {
  const { isLoaded, isSignedIn, userId } = useAuth();
  const { status } = useSessiondState();
  return <p>{status === "unavailable" ? "unavailable" : !isLoaded ? "loading" : isSignedIn ? `signed in as ${userId}` : "signed out"}</p>;
}

describe("React initialState", () => {
  it("the server's HTML already shows the user, signed out or unavailable", () => {
    const server = new FakeSessiond();
    const ada = server.signIn("ada");
    const html = (initialState?: InitialState) => renderToString(<SessiondProvider url="/api/auth" initialState={initialState}><Who /></SessiondProvider>);
    expect(html({ status: "signed-in", session: ada })).toContain("signed in as ada");
    expect(html({ status: "signed-out", session: null })).toContain("signed out");
    expect(html({ status: "unavailable", session: null })).toContain("unavailable");
    expect(html()).toContain("loading"); // without it, as before
  });

  it("the first client render shows the user, then revalidates in the background and follows sessiond", async () => {
    const server = new FakeSessiond();
    const ada = server.signIn("ada");
    const host = document.createElement("div");
    const root = createRoot(host);
    const client = createSessiond({ url: "/api/auth", env: fakeEnv(server), initialState: { status: "signed-in", session: ada } });
    server.live().forEach((s) => (s.status = "ended")); // signed out elsewhere since the server rendered
    act(() => root.render(<SessiondProvider client={client} initialState={{ status: "signed-in", session: ada }}><Who /></SessiondProvider>));
    expect(host.textContent).toBe("signed in as ada"); // the first render: what the server rendered, no "loading"
    await act(settle);
    // One call revalidates: the client's account list, which authenticates the same cookie; no GET /session.
    expect(server.requests.map((r) => r.url.pathname)).toEqual([`/api/auth/clients/${ada.client_id}/sessions`]);
    expect(host.textContent).toBe("signed out");
    act(() => root.unmount());
  });

  it("a live session is revalidated with one call, the account list, and no GET /session", async () => {
    const server = new FakeSessiond("multi");
    const ada = server.signIn("ada");
    const bob = server.signIn("bob"); // the same browser: the same client
    server.active = ada.id;
    const client = createSessiond({ url: "/api/auth", env: fakeEnv(server), initialState: { status: "signed-in", session: ada } });
    const state = await client.load();
    expect(server.requests.map((r) => `${r.method} ${r.url.pathname}`)).toEqual([`GET /api/auth/clients/${ada.client_id}/sessions`]);
    expect(state.status).toBe("signed-in");
    expect(state.session?.id).toBe(ada.id);
    expect(state.accounts.map((s) => s.id).sort()).toEqual([ada.id, bob.id].sort());
    // Later loads (an event, another tab) ask who is active again.
    await client.load();
    expect(server.requests.at(-2)?.url.pathname).toBe("/api/auth/session");
  });
});

describe("Vue initialState", () => {
  it("the server's HTML already shows the user", async () => {
    const server = new FakeSessiond();
    const ada = server.signIn("ada");
    const Who = defineComponent({
      setup() {
        const { isLoaded, isSignedIn, userId } = useVueAuth();
        return () => h("p", !isLoaded.value ? "loading" : isSignedIn.value ? `signed in as ${userId.value}` : "signed out");
      },
    });
    const app = createSSRApp(Who);
    app.use(sessiondPlugin, { client: createSessiond({ url: "/api/auth", env: fakeEnv(server), initialState: { status: "signed-in", session: ada } }) });
    expect(await vueToString(app)).toContain("signed in as ada");
    const plain = createSSRApp(Who);
    plain.use(sessiondPlugin, { client: createSessiond({ url: "/api/auth", fetch: server.fetch }) });
    expect(await vueToString(plain)).toContain("loading");
  });

  it("the plugin passes initialState and onSessionChange to the client it makes", async () => {
    const server = new FakeSessiond();
    const ada = server.signIn("ada");
    // The plugin makes its client with the page's own facilities: here, the globals.
    vi.stubGlobal("fetch", server.fetch);
    vi.stubGlobal("BroadcastChannel", FakeBroadcastChannel);
    vi.stubGlobal("EventSource", FakeEventSource);
    const changed = vi.fn();
    const Who = defineComponent({ setup: () => { const { userId } = useVueAuth(); return () => h("p", String(userId.value)); } });
    const app = createSSRApp(Who);
    app.use(sessiondPlugin, { url: "/api/auth", initialState: { status: "signed-in", session: ada }, onSessionChange: changed });
    expect(await vueToString(app)).toContain("ada");
    await settle();
    expect(changed).not.toHaveBeenCalled(); // the background check agreed
  });
});

describe("onSessionChange and the back/forward cache", () => {
  it("fires on a real change only, not on the first load or an outage", async () => {
    const server = new FakeSessiond();
    server.signIn("ada");
    const changed = vi.fn();
    const c = createSessiond({ url: "/api/auth", env: fakeEnv(server), onSessionChange: changed });
    await c.load();
    expect(changed).not.toHaveBeenCalled();
    server.outage = "down";
    await c.load();
    server.outage = null;
    await c.load();
    expect(changed).not.toHaveBeenCalled();
    server.signIn("bob");
    await c.load();
    expect(changed).toHaveBeenCalledTimes(1);
    expect(changed.mock.calls[0][0].session.user_id).toBe("bob");
    server.live().forEach((s) => (s.status = "ended"));
    await c.load();
    expect(changed).toHaveBeenCalledTimes(2);
    expect(changed.mock.calls[1][0].status).toBe("signed-out");
  });

  it("with initialState, a background check that disagrees fires it", async () => {
    const server = new FakeSessiond();
    const changed = vi.fn();
    const c = createSessiond({ url: "/api/auth", env: fakeEnv(server), onSessionChange: changed, initialState: { status: "signed-in", session: server.signIn("ada") } });
    server.live().forEach((s) => (s.status = "ended"));
    await c.load();
    expect(changed).toHaveBeenCalledTimes(1);
  });

  it("a page restored from the back/forward cache asks again; a fresh pageshow does not", async () => {
    const server = new FakeSessiond();
    server.signIn("ada");
    const c = createSessiond({ url: "/api/auth", fetch: server.fetch });
    const off = c.addListener(() => undefined);
    await c.load();
    const before = server.requests.length;
    window.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: false }));
    await settle();
    expect(server.requests.length).toBe(before);
    server.live().forEach((s) => (s.status = "ended"));
    window.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: true }));
    await settle();
    expect(c.status).toBe("signed-out");
    off();
    window.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: true }));
    await settle();
    const after = server.requests.length;
    await settle();
    expect(server.requests.length).toBe(after); // no listener, no check
  });
});
