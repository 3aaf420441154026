import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createApp, defineComponent, h, nextTick, type Component } from "vue";
import { createSessiond } from "../src/index.js";
import { SignOutButton, sessiondPlugin, useAuth, useSessiondState } from "../src/vue.js";
import { FakeSessiond, fakeEnv, settle } from "./fakes.js";

let host: HTMLElement;
let unmount: () => void = () => {};
beforeEach(() => {
  host = document.createElement("div");
  document.body.append(host);
});
afterEach(() => {
  unmount();
  host.remove();
});

const Who = defineComponent({
  setup() {
    const { isLoaded, isSignedIn, userId } = useAuth();
    const state = useSessiondState();
    return () => h("p", !isLoaded.value ? "loading" : (isSignedIn.value ? `signed in as ${userId.value}` : "signed out") + (state.value.error ? ` error ${state.value.error.code}` : ""));
  },
});

async function mount(server: FakeSessiond, child: Component, navigate = vi.fn()) {
  const client = createSessiond({ url: "/api/auth", navigate, env: fakeEnv(server) });
  const app = createApp({ render: () => [h(Who), h(child)] });
  app.use(sessiondPlugin, { client });
  app.mount(host);
  unmount = () => app.unmount();
  await settle();
  await nextTick();
  return { navigate };
}

async function click(el: Element | null | undefined) {
  expect(el).toBeTruthy();
  (el as HTMLElement).click();
  await settle();
  await nextTick();
}

const p = () => host.querySelector("p")!.textContent;

describe("Vue <SignOutButton>", () => {
  it("default: <button>Sign out</button>", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    await mount(server, { render: () => h(SignOutButton) });
    expect(p()).toBe("signed in as alice");
    await click(host.querySelector("button"));
    expect(host.querySelector("button")!.textContent).toBe("Sign out");
    expect(p()).toBe("signed out");
    expect(server.live()).toEqual([]);
  });

  it("scoped slot { handler }: your button, your @click, one sign-out", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    await mount(server, { render: () => h(SignOutButton, null, { default: ({ handler }: { handler: () => void }) => h("button", { class: "mine", onClick: handler }, "Log out") }) });
    expect(host.querySelectorAll("button")).toHaveLength(1);
    await click(host.querySelector("button.mine"));
    expect(p()).toBe("signed out");
    expect(server.requests.filter((r) => r.method === "DELETE")).toHaveLength(1);
  });

  it("a plain child in the default slot becomes the button", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    await mount(server, { render: () => h(SignOutButton, null, { default: () => h("button", { class: "mine" }, "Custom sign out button") }) });
    await click(host.querySelector("button.mine"));
    expect(p()).toBe("signed out");
  });

  it(":sign-out-options=\"{ sessionId }\" ends exactly that one; signOutCallback runs after", async () => {
    const server = new FakeSessiond("multi");
    const alice = server.signIn("alice");
    const bob = server.signIn("bob");
    const cb = vi.fn();
    await mount(server, { render: () => h(SignOutButton, { signOutOptions: { sessionId: alice.id }, signOutCallback: cb }) });
    await click(host.querySelector("button"));
    expect(server.live().map((s) => s.id)).toEqual([bob.id]);
    expect(p()).toBe("signed in as bob");
    expect(cb).toHaveBeenCalledOnce();
  });

  it("redirect-url: navigates to the echoed URL; a refused one is an error", async () => {
    const server = new FakeSessiond();
    server.signIn("alice");
    const { navigate } = await mount(server, { render: () => h(SignOutButton, { redirectUrl: "//evil.example" }) });
    await click(host.querySelector("button"));
    expect(navigate).not.toHaveBeenCalled();
    expect(p()).toBe("signed in as alice error invalid_redirect_url");
    unmount();
    const m = await mount(server, { render: () => h(SignOutButton, { redirectUrl: "/bye" }) });
    await click(host.querySelectorAll("button")[0]);
    expect(m.navigate).toHaveBeenCalledExactlyOnceWith("/bye");
  });
});
