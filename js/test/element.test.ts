import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeBroadcastChannel, FakeEventSource, FakeSessiond, settle } from "./fakes.js";

let server: FakeSessiond;
let assign: ReturnType<typeof vi.fn<(url: string | URL) => void>>;
beforeEach(() => {
  server = new FakeSessiond("multi");
  vi.stubGlobal("BroadcastChannel", FakeBroadcastChannel);
  vi.stubGlobal("EventSource", FakeEventSource);
  vi.stubGlobal("fetch", server.fetch);
  assign = vi.fn<(url: string | URL) => void>();
  vi.spyOn(window.location, "assign").mockImplementation(assign);
});
afterEach(() => {
  document.body.innerHTML = "";
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

await import("../src/element.js");

function page(html: string) {
  document.body.innerHTML = html;
  return document.querySelector("sessiond-sign-out")!;
}

describe("<sessiond-sign-out>", () => {
  it("is registered on import", () => {
    expect(customElements.get("sessiond-sign-out")).toBeDefined();
  });

  it("wraps the page's own button: a click signs out and tells the page", async () => {
    server.signIn("alice");
    server.signIn("bob");
    const el = page(`<sessiond-sign-out url="/api/auth"><button class="mine">Leave</button></sessiond-sign-out>`);
    expect(el.querySelectorAll("button")).toHaveLength(1);
    const done = vi.fn();
    document.addEventListener("sessiond:signed-out", done);
    el.querySelector("button")!.click();
    await settle();
    expect(server.live()).toEqual([]); // multi: every account on this browser
    expect(done).toHaveBeenCalledOnce();
    expect((done.mock.calls[0][0] as CustomEvent).detail.ended).toHaveLength(2);
    expect(server.requests.every((r) => r.credentials === "include")).toBe(true);
    expect(assign).not.toHaveBeenCalled();
  });

  it("empty: renders <button>Sign out</button>", async () => {
    server.signIn("alice");
    const el = page(`<sessiond-sign-out url="/api/auth"></sessiond-sign-out>`);
    const b = el.shadowRoot!.querySelector("slot > button") as HTMLButtonElement;
    expect(b.textContent).toBe("Sign out");
    b.click();
    await settle();
    expect(server.live()).toEqual([]);
  });

  it("session-id and redirect-url: ends exactly that session, then goes where sessiond echoed", async () => {
    const alice = server.signIn("alice");
    const bob = server.signIn("bob");
    const el = page(`<sessiond-sign-out url="/api/auth" session-id="${alice.id}" redirect-url="/bye"><button>x</button></sessiond-sign-out>`);
    el.querySelector("button")!.click();
    await settle();
    const del = server.requests.find((r) => r.method === "DELETE")!;
    expect(del.url.searchParams.get("session_id")).toBe(alice.id);
    expect(del.url.searchParams.get("redirect_url")).toBe("/bye");
    expect(server.live().map((s) => s.id)).toEqual([bob.id]);
    expect(assign).toHaveBeenCalledExactlyOnceWith("/bye");
  });

  it("a refused redirect-url: sessiond:error, nothing ends, no navigation", async () => {
    server.signIn("alice");
    const el = page(`<sessiond-sign-out url="/api/auth" redirect-url="https://evil.example"><button>x</button></sessiond-sign-out>`);
    const failed = vi.fn();
    el.addEventListener("sessiond:error", failed);
    el.querySelector("button")!.click();
    await settle();
    expect((failed.mock.calls[0][0] as CustomEvent).detail).toMatchObject({ code: "invalid_redirect_url", status: 400 });
    expect(server.live()).toHaveLength(1);
    expect(assign).not.toHaveBeenCalled();
  });

  it("sessiond unreachable: sessiond:error with code unreachable", async () => {
    server.signIn("alice");
    server.outage = "down";
    const el = page(`<sessiond-sign-out url="/api/auth"><button>x</button></sessiond-sign-out>`);
    const failed = vi.fn();
    el.addEventListener("sessiond:error", failed);
    el.querySelector("button")!.click();
    await settle();
    expect((failed.mock.calls[0][0] as CustomEvent).detail).toMatchObject({ code: "unreachable", status: 0 });
  });

  it("a double click signs out once; aria-busy while it runs", async () => {
    server.signIn("alice");
    const el = page(`<sessiond-sign-out url="/api/auth"><button>x</button></sessiond-sign-out>`);
    const b = el.querySelector("button")!;
    b.click();
    expect(el.getAttribute("aria-busy")).toBe("true");
    b.click();
    await settle();
    expect(server.requests.filter((r) => r.method === "DELETE")).toHaveLength(1);
    expect(el.hasAttribute("aria-busy")).toBe(false);
  });

  it("no url attribute: sessiond:error, nothing sent", async () => {
    const el = page(`<sessiond-sign-out><button>x</button></sessiond-sign-out>`);
    const failed = vi.fn();
    el.addEventListener("sessiond:error", failed);
    el.querySelector("button")!.click();
    await settle();
    expect((failed.mock.calls[0][0] as CustomEvent).detail.message).toContain("needs a url attribute");
    expect(server.requests).toEqual([]);
  });
});
