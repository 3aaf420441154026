// The browser core's token mode (mobile apps: a tokenCache instead of
// cookies) against the real sessiond, under Node and edge-runtime.
import { describe, expect, inject, it } from "vitest";
import { createSessiond, type TokenCache } from "../../src/index.js";
import { createSessiondClient } from "../../src/server.js";

function memoryCache(): TokenCache & { store: Map<string, string>; broken: boolean } {
  const store = new Map<string, string>();
  return {
    store,
    broken: false,
    async getToken(key) {
      if (this.broken) throw new Error("keychain locked");
      return store.get(key) ?? null;
    },
    async saveToken(key, token) {
      store.set(key, token);
    },
    async clearToken(key) {
      store.delete(key);
    },
  };
}

function recording() {
  const sent: { url: string; init: RequestInit }[] = [];
  const f: typeof fetch = (input, init) => {
    sent.push({ url: String(input), init: init ?? {} });
    return fetch(input, init);
  };
  return { sent, fetch: f };
}

describe("tokenCache", () => {
  const url = inject("multi");
  const backend = createSessiondClient({ url, apiKey: inject("apiKey") });

  it("several accounts as a token list: Bearer, credentials omit, a local setActive, sign out of all", async () => {
    const a = await backend.signIn({ userId: "mobile-alice" });
    const b = await backend.signIn({ userId: "mobile-bob" });
    const cache = memoryCache();
    const rec = recording();
    const app = createSessiond({ url, tokenCache: cache, fetch: rec.fetch, navigate: () => undefined });

    expect((await app.load()).status).toBe("signed-out"); // nothing cached: signed out, no call
    expect(rec.sent).toHaveLength(0);

    await app.addToken(a.token);
    await app.addToken(b.token);
    expect(app.status).toBe("signed-in");
    expect(app.session?.user_id).toBe("mobile-bob");
    expect(app.accounts.map((s) => s.user_id)).toEqual(["mobile-bob", "mobile-alice"]);
    for (const r of rec.sent) {
      expect(r.init.credentials).toBe("omit");
      expect(new Headers(r.init.headers).get("authorization")).toMatch(/^Bearer st_/);
    }

    const before = rec.sent.length;
    await app.setActive({ session: a.session.id });
    expect(app.session?.user_id).toBe("mobile-alice");
    expect(rec.sent.slice(before).every((r) => r.url.endsWith("/session") && (r.init.method ?? "GET") === "GET")).toBe(true); // switching asks sessiond nothing but who each token is
    expect(cache.store.get("sessiond_tokens")).toBe(`${a.token} ${b.token}`);

    // A fresh start of the app reads the cache.
    const restarted = createSessiond({ url, tokenCache: cache, fetch: rec.fetch });
    expect((await restarted.load()).session?.user_id).toBe("mobile-alice");

    // alice's own sign-out (her session only: she is on her own client);
    // the next account in the list becomes the active one, as sessiond does for a browser
    await app.signOut();
    expect(app.session?.user_id).toBe("mobile-bob");
    expect(app.accounts.map((s) => s.user_id)).toEqual(["mobile-bob"]);
    expect(cache.store.get("sessiond_tokens")).toBe(b.token);
    expect((await backend.sessions.get(a.session.id)).status).toBe("ended");
    await app.signOut();
    expect(app.status).toBe("signed-out");
    expect(cache.store.has("sessiond_tokens")).toBe(false);
  });

  it("a token ended elsewhere is dropped; a storage read failure is unavailable, never signed out", async () => {
    const a = await backend.signIn({ userId: "mobile-carol" });
    const cache = memoryCache();
    const app = createSessiond({ url, tokenCache: cache });
    await app.addToken(a.token);
    expect(app.status).toBe("signed-in");

    cache.broken = true;
    const fresh = createSessiond({ url, tokenCache: cache });
    const st = await fresh.load();
    expect(st.status).toBe("unavailable");
    expect(st.error?.code).toBe("storage_unavailable");
    expect(st.error?.isUnavailable).toBe(true);
    cache.broken = false;

    await backend.sessions.end(a.session.id);
    expect((await app.load()).status).toBe("signed-out");
    expect(cache.store.has("sessiond_tokens")).toBe(false);
  });

  it("sessiond down with a cached token is unavailable, and the token is kept", async () => {
    const a = await backend.signIn({ userId: "mobile-dan" });
    const cache = memoryCache();
    cache.store.set("sessiond_tokens", a.token);
    const app = createSessiond({ url: inject("closed"), tokenCache: cache });
    expect((await app.load()).status).toBe("unavailable");
    expect(cache.store.get("sessiond_tokens")).toBe(a.token);
  });
});
