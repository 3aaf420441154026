import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSessiond } from "../src/index.js";
import { SessiondProvider, SignOutButton, UserButton, useAuth, useSessiond } from "../src/react.js";
import { FakeBroadcastChannel, FakeEventSource, FakeSessiond, fakeEnv, settle } from "./fakes.js";

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

let root: Root;
let host: HTMLElement;
beforeEach(() => {
  FakeBroadcastChannel.open = [];
  host = document.createElement("div");
  document.body.append(host);
  root = createRoot(host);
});
afterEach(() => {
  act(() => root.unmount());
  host.remove();
  vi.unstubAllGlobals();
});

async function render(server: FakeSessiond, ui: React.ReactNode, navigate = vi.fn()) {
  const client = createSessiond({ url: "/api/auth", navigate, env: fakeEnv(server) });
  await act(async () => root.render(<SessiondProvider client={client}>{ui}</SessiondProvider>));
  await act(settle);
  return { client, navigate };
}

async function click(el: Element | null | undefined) {
  expect(el).toBeTruthy();
  await act(async () => (el as HTMLElement).click());
  await act(settle);
}

const button = (text: string) => [...host.querySelectorAll("button")].find((b) => b.textContent === text);

function Who() {
  const { isLoaded, isSignedIn, sessionId, userId } = useAuth();
  const { error } = useSessiond();
  if (!isLoaded) return <p>loading</p>;
  return (
    <p>
      {isSignedIn ? `signed in as ${userId} (${sessionId})` : "signed out"}
      {error ? ` error ${error.code}` : ""}
    </p>
  );
}

describe("useAuth", () => {
  it("gives isLoaded, isSignedIn, sessionId, userId", async () => {
    const server = new FakeSessiond();
    const me = server.signIn("alice");
    await render(server, <Who />);
    expect(host.textContent).toBe(`signed in as alice (${me.id})`);
  });
});

describe("<SignOutButton>", () => {
  it("default: a <button>Sign out</button> that signs out", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    await render(server, <><Who /><SignOutButton /></>);
    await click(button("Sign out"));
    expect(host.querySelector("p")!.textContent).toBe("signed out");
    expect(server.live()).toEqual([]);
  });

  it("a child element becomes the button, keeping its own onClick", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    const own = vi.fn();
    await render(server, <><Who /><SignOutButton><button className="mine" onClick={own}>Custom sign out button</button></SignOutButton></>);
    expect(host.querySelectorAll("button")).toHaveLength(1);
    await click(host.querySelector("button.mine"));
    expect(own).toHaveBeenCalledOnce();
    expect(host.querySelector("p")!.textContent).toBe("signed out");
  });

  it("signOutOptions={{ sessionId }} ends exactly that session", async () => {
    const server = new FakeSessiond("multi");
    const alice = server.signIn("alice");
    const bob = server.signIn("bob");
    function Home() {
      const { sessionId } = useAuth();
      if (!sessionId) return <p>sign in</p>;
      return <SignOutButton signOutOptions={{ sessionId }} />;
    }
    await render(server, <><Who /><Home /></>);
    await click(button("Sign out"));
    expect(server.live().map((s) => s.id)).toEqual([alice.id]);
    expect(server.sessions.find((s) => s.id === bob.id)!.status).toBe("ended");
    expect(host.querySelector("p")!.textContent).toBe(`signed in as alice (${alice.id})`);
  });

  it("redirectUrl navigates to what sessiond echoed; a refused one shows an error and stays", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    const { navigate } = await render(server, <><Who /><SignOutButton redirectUrl="https://evil.example" /></>);
    await click(button("Sign out"));
    expect(navigate).not.toHaveBeenCalled();
    expect(host.querySelector("p")!.textContent).toContain("error invalid_redirect_url");
    expect(host.querySelector("p")!.textContent).toContain("signed in as alice");

    await act(async () => root.render(<SessiondProvider client={createSessiond({ url: "/api/auth", navigate, env: fakeEnv(server) })}><SignOutButton signOutOptions={{ redirectUrl: "/bye" }} /></SessiondProvider>));
    await act(settle);
    await click(button("Sign out"));
    expect(navigate).toHaveBeenCalledExactlyOnceWith("/bye");
  });

  it("a double click signs out once", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    await render(server, <SignOutButton />);
    const b = button("Sign out")!;
    await act(async () => {
      b.click();
      b.click();
    });
    await act(settle);
    expect(server.requests.filter((r) => r.method === "DELETE")).toHaveLength(1);
  });
});

describe("<UserButton>", () => {
  it("lists the accounts, switches, signs out one, then all", async () => {
    const server = new FakeSessiond("multi");
    const alice = server.signIn("alice");
    server.signIn("carol");
    const bob = server.signIn("bob");
    await render(server, <><Who /><UserButton /></>);
    expect(host.querySelector("summary")!.textContent).toBe("bob");
    expect([...host.querySelectorAll(".sessiond-account span")].map((e) => e.textContent).sort()).toEqual(["alice", "bob", "carol"]);
    expect(button("Sign out of all accounts")).toBeTruthy();

    await click(button("Switch to alice"));
    expect(host.querySelector("summary")!.textContent).toBe("alice");
    expect(server.active).toBe(alice.id);

    await click(button("Sign out carol"));
    expect(server.live().map((s) => s.user_id).sort()).toEqual(["alice", "bob"]);
    expect(host.querySelector("summary")!.textContent).toBe("alice");

    await click(button("Sign out of all accounts"));
    expect(server.live()).toEqual([]);
    expect(host.querySelector("summary")).toBeNull();
    expect(host.textContent).toBe("signed out");
    expect(server.sessions.find((s) => s.id === bob.id)!.status).toBe("ended");
  });

  it("one account: no 'Sign out of all accounts'", async () => {
    const server = new FakeSessiond("multi");
    server.signIn("alice");
    await render(server, <UserButton />);
    expect(button("Sign out alice")).toBeTruthy();
    expect(button("Sign out of all accounts")).toBeUndefined();
  });
});

describe("SessiondProvider url=", () => {
  it("makes its own client and loads", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    // The provider makes its client with the page's own facilities: here, the globals.
    vi.stubGlobal("fetch", server.fetch);
    vi.stubGlobal("BroadcastChannel", FakeBroadcastChannel);
    vi.stubGlobal("EventSource", FakeEventSource);
    await act(async () => root.render(<SessiondProvider url="/api/auth"><Who /></SessiondProvider>));
    await act(settle);
    expect(host.textContent).toContain("signed in as alice");
    expect(server.requests[0].url.pathname).toBe("/api/auth/session");
  });
});
