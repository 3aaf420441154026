// @sessiond/js/server against the real sessiond (test/server/setup.ts),
// under Node and under edge-runtime (vitest.server.config.ts).
import { describe, expect, inject, it } from "vitest";
import { createSessiondClient, parseSetCookie, proxyRequest, redirectPath, serializeSetCookie, SessiondError, type RequestLike } from "../../src/server.js";

const apiKey = inject("apiKey");
const single = inject("single");
const multi = inject("multi");

/** A browser's cookie jar, enough for sessiond's cookies (host-only, Path=/). */
class Jar {
  cookies = new Map<string, string>();
  apply(setCookie: string[]): this {
    for (const h of setCookie) {
      const c = parseSetCookie(h);
      if (c.options.maxAge !== undefined && c.options.maxAge <= 0) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    return this;
  }
  header(extra = ""): string {
    return [...this.cookies].map(([n, v]) => `${n}=${v}`).concat(extra ? [extra] : []).join("; ");
  }
  request(extra = "", headers: Record<string, string> = {}): RequestLike {
    return new Request("https://app.example.test/page", { headers: { cookie: this.header(extra), "user-agent": "js-server-test", ...headers } });
  }
}

/** A fetch that counts the calls and keeps the headers each one sent. */
function recording() {
  const sent: Headers[] = [];
  const f: typeof fetch = (input, init) => {
    sent.push(new Headers(init?.headers));
    return fetch(input, init);
  };
  return { sent, fetch: f };
}

/** What sessiond itself answers to GET /session with these cookies: its Set-Cookie headers, read raw. */
async function rawSetCookie(url: string, cookie: string): Promise<string[]> {
  const res = await fetch(url + "/session", { headers: { cookie } });
  await res.text();
  return res.headers.getSetCookie();
}

const seen = new Set<string>(); // every Set-Cookie sessiond wrote in these tests, for the round trip

describe("single mode", () => {
  const rec = recording();
  const client = createSessiondClient({ url: single, apiKey, fetch: rec.fetch });

  it("without a credential is signed out without asking sessiond", async () => {
    const before = rec.sent.length;
    const auth = await client.authenticateRequest(new Request("https://app.example.test/", { headers: { cookie: "theme=dark", authorization: "Bearer sk_not_a_session_token" } }));
    expect(auth).toEqual({ isSignedIn: false, userId: null, sessionId: null, session: null, setCookie: [] });
    expect(rec.sent.length).toBe(before);
  });

  it("signs in, and the cookie it sets authenticates the next request; only sessiond's cookie is forwarded", async () => {
    const s = await client.signIn({ userId: "ada", request: new Request("https://app.example.test/", { headers: { "user-agent": "ua-from-request" } }) });
    expect(s.token).toMatch(/^st_/);
    expect(s.session.user_agent).toBe("ua-from-request");
    expect(s.setCookie).toHaveLength(1);
    s.setCookie.forEach((h) => seen.add(h));
    const jar = new Jar().apply(s.setCookie);
    const auth = await client.authenticateRequest(jar.request("theme=dark; other_session=x"));
    expect(auth).toMatchObject({ isSignedIn: true, userId: "ada", sessionId: s.session.id, setCookie: [] });
    const last = rec.sent[rec.sent.length - 1];
    expect(last.get("cookie")).toBe(`__session=${s.token}`);
    expect(last.get("authorization")).toBeNull();
  });

  it("a bearer session token wins over cookies and goes to sessiond as is", async () => {
    const s = await client.signIn({ userId: "mobile" });
    const auth = await client.authenticateRequest(new Request("https://x/", { headers: { authorization: `Bearer ${s.token}`, cookie: "__session=st_bogus" } }));
    expect(auth).toMatchObject({ isSignedIn: true, userId: "mobile", setCookie: [] });
    expect(rec.sent[rec.sent.length - 1].get("cookie")).toBeNull();
  });

  it("a dead cookie's 401 hands back exactly sessiond's Set-Cookie headers", async () => {
    const s = await client.signIn({ userId: "bea" });
    const jar = new Jar().apply(s.setCookie);
    const out = await client.signOut(jar.request());
    expect(out.ended.map((e) => e.id)).toEqual([s.session.id]);
    expect(out.setCookie).toHaveLength(1);
    out.setCookie.forEach((h) => seen.add(h));
    const auth = await client.authenticateRequest(jar.request());
    expect(auth.isSignedIn).toBe(false);
    const raw = await rawSetCookie(single, jar.header());
    expect(raw.length).toBeGreaterThan(0);
    expect(auth.setCookie).toEqual(raw); // same count, same bytes, same order
    auth.setCookie.forEach((h) => seen.add(h));
    expect(parseSetCookie(auth.setCookie[0])).toMatchObject({ name: "__session", value: "", options: { maxAge: 0, httpOnly: true } });
  });

  it("a sessiond cookie sent twice is not trusted: signed out without a call", async () => {
    const s = await client.signIn({ userId: "dup" });
    const before = rec.sent.length;
    const auth = await client.authenticateRequest(new Request("https://x/", { headers: { cookie: `__session=${s.token}; __session=st_tossed_in_from_a_sibling` } }));
    expect(auth.isSignedIn).toBe(false);
    expect(rec.sent.length).toBe(before);
  });

  it("signOut echoes the checked redirect URL; a refused one ends nothing", async () => {
    const s = await client.signIn({ userId: "cy" });
    const jar = new Jar().apply(s.setCookie);
    const bad = await client.signOut(jar.request(), { redirectUrl: "https://evil.example/" }).catch((e) => e);
    expect(bad).toBeInstanceOf(SessiondError);
    expect(bad.code).toBe("invalid_redirect_url");
    expect(bad.isUnavailable).toBe(false);
    expect((await client.authenticateRequest(jar.request())).isSignedIn).toBe(true);
    const out = await client.signOut(jar.request(), { redirectUrl: "/goodbye" });
    expect(out.redirectUrl).toBe("/goodbye");
    expect(out.ended).toHaveLength(1);
    const again = await client.signOut(jar.apply(out.setCookie).request());
    expect(again).toEqual({ ended: [], redirectUrl: null, setCookie: [] }); // no cookie left: nothing to ask
  });

  it("the backend calls of client.sessions", async () => {
    const a = await client.signIn({ userId: "dee" });
    const b = await client.signIn({ userId: "dee" });
    const c = await client.signIn({ userId: "dee" });
    expect((await client.sessions.get(a.session.id)).user_id).toBe("dee");
    const page = await client.sessions.listForUser("dee", { limit: 2 });
    expect(page.data.map((s) => s.id)).toEqual([c.session.id, b.session.id]);
    expect(page.next_cursor).not.toBeNull();
    expect((await client.sessions.listForClient(a.session.client_id)).data.map((s) => s.id)).toEqual([a.session.id]);
    expect((await client.sessions.end(a.session.id)).ended.map((s) => s.status)).toEqual(["revoked"]);
    expect((await client.sessions.endForUser("dee", { except: c.session.id })).ended.map((s) => s.id)).toEqual([b.session.id]);
    expect((await client.sessions.endForClient(c.session.client_id)).ended.map((s) => s.id)).toEqual([c.session.id]);
    const missing = await client.sessions.get("sess_00000000000000000000000000").catch((e) => e);
    expect(missing).toMatchObject({ code: "session_not_found", status: 404, isUnavailable: false });
  });

  it("backend calls without an API key fail before any request", async () => {
    const noKey = createSessiondClient({ url: single, apiKey: "", fetch: rec.fetch });
    await expect(noKey.signIn({ userId: "x" })).rejects.toThrow(/apiKey/);
  });
});

describe("multi mode", () => {
  const rec = recording();
  const client = createSessiondClient({ url: multi, apiKey, fetch: rec.fetch });

  it("a second sign-in joins the browser's client once sessiond confirmed the active cookie", async () => {
    const a = await client.signIn({ userId: "alice" });
    expect(a.setCookie.map((h) => parseSetCookie(h).name).sort()).toEqual(["__session", `__session_${a.session.id}`]);
    const jar = new Jar().apply(a.setCookie);
    const b = await client.signIn({ userId: "bob", request: jar.request() });
    expect(b.session.client_id).toBe(a.session.client_id);
    [...a.setCookie, ...b.setCookie].forEach((h) => seen.add(h));
    jar.apply(b.setCookie);
    expect([...jar.cookies.keys()].sort()).toEqual(["__session", `__session_${a.session.id}`, `__session_${b.session.id}`].sort());
    const auth = await client.authenticateRequest(jar.request());
    expect(auth).toMatchObject({ isSignedIn: true, userId: "bob" });
    // every account cookie goes to sessiond, nothing else
    expect(rec.sent[rec.sent.length - 1].get("cookie")!.split("; ").map((p) => p.split("=")[0]).sort()).toEqual([...jar.cookies.keys()].sort());
    const accounts = await client.sessions.listForClient(a.session.client_id);
    expect(accounts.data.map((s) => s.user_id).sort()).toEqual(["alice", "bob"]);

    const out = await client.signOut(jar.request());
    expect(out.ended.map((s) => s.user_id).sort()).toEqual(["alice", "bob"]);
    out.setCookie.forEach((h) => seen.add(h));
    expect(new Jar().apply(a.setCookie).apply(b.setCookie).apply(out.setCookie).cookies.size).toBe(0);
  });

  it("a duplicated active cookie never chooses the client", async () => {
    const a = await client.signIn({ userId: "carol" });
    const jar = new Jar().apply(a.setCookie);
    const b = await client.signIn({ userId: "dan", request: jar.request(`__session=${a.token}`) });
    expect(b.session.client_id).not.toBe(a.session.client_id);
  });

  it("a dead active cookie: a new client, and sessiond's clearing headers come first", async () => {
    const a = await client.signIn({ userId: "erin" });
    const jar = new Jar().apply(a.setCookie);
    await client.sessions.end(a.session.id);
    const b = await client.signIn({ userId: "fay", request: jar.request() });
    expect(b.session.client_id).not.toBe(a.session.client_id);
    const cleared = b.setCookie.filter((h) => parseSetCookie(h).options.maxAge === 0).map((h) => parseSetCookie(h).name);
    expect(cleared).toContain("__session");
    b.setCookie.forEach((h) => seen.add(h));
    jar.apply(b.setCookie);
    expect(jar.cookies.get("__session")).toBe(b.token);
    expect((await client.authenticateRequest(jar.request())).userId).toBe("fay");
  });
});

describe("redirectPath", () => {
  const cases: [string, boolean][] = [
    ["/", true], ["/settings?tab=2", true], ["/./a", true], ["/a/../b", true], ["/a//b", true], ["/x?r=//evil.test", true], ["/caf%C3%A9", true],
    ["", false], ["relative", false], ["https://evil.test/", false], ["javascript:alert(1)", false],
    ["//evil.test", false], ["///evil.test", false], ["///../..", false], ["/\\evil.test", false], ["/\t/evil.test", false], ["/a b", false],
    ["/.//evil.test", false], ["/a/..//evil.test", false], ["/%2e//evil.test", false], ["/.%2E//evil.test", false], ["/%zz", false], ["/\ud800", false],
  ];
  it.each(cases)("%j: accepted %s", (raw, ok) => {
    expect(redirectPath(raw, "/fallback")).toBe(ok ? raw : "/fallback");
  });

  it("agrees with sessiond on every case", async () => {
    const client = createSessiondClient({ url: single, apiKey });
    for (const [raw] of cases.filter(([raw]) => raw !== "" && !raw.includes("\ud800"))) {
      const jar = new Jar().apply((await client.signIn({ userId: "redirects" })).setCookie);
      const res = await fetch(`${single}/session?redirect_url=${encodeURIComponent(raw)}`, { method: "DELETE", headers: { cookie: jar.header() } });
      const body = await res.json();
      const sessiondAccepted = res.status === 200 && body.redirect_url === raw;
      expect(sessiondAccepted || body.code === "invalid_redirect_url").toBe(true);
      expect({ raw, accepted: redirectPath(raw, "/fallback") === raw }).toEqual({ raw, accepted: sessiondAccepted });
    }
  });
});

describe("proxyRequest: sessiond behind the app's origin", () => {
  const backend = createSessiondClient({ url: multi, apiKey });
  const fromPage = (path: string, init: RequestInit = {}) => new Request("https://app.example.test/api/auth" + path, init);

  it("forwards the method, the body and only the headers sessiond reads; hands back the status, the body and every Set-Cookie verbatim", async () => {
    const s = await backend.signIn({ userId: "proxied" });
    const jar = new Jar().apply(s.setCookie);
    expect(jar.cookies.size).toBe(2); // multi mode: the active cookie and the account cookie

    const rec = recording();
    const who = await proxyRequest(fromPage("/session", { headers: { cookie: jar.header("theme=dark"), accept: "application/json", authorization: `Bearer ${apiKey}`, "x-forwarded-for": "203.0.113.9" } }), { url: multi, fetch: rec.fetch });
    expect(who.status).toBe(200);
    expect((await who.json()).id).toBe(s.session.id);
    expect([...rec.sent[0].keys()].sort()).toEqual(["accept", "cookie"]);
    expect(rec.sent[0].get("cookie")).toBe(jar.header("theme=dark"));

    const active = await proxyRequest(fromPage("/session/active", { method: "POST", headers: { cookie: jar.header(), "content-type": "application/json" }, body: JSON.stringify({ session_id: s.session.id }) }), { url: multi });
    expect(active.status).toBe(200);
    expect((await active.json()).id).toBe(s.session.id);

    const out = await proxyRequest(fromPage("/session?redirect_url=%2Fbye", { method: "DELETE", headers: { cookie: jar.header() } }), { url: multi });
    expect(out.status).toBe(200);
    const body = await out.json();
    expect(body.redirect_url).toBe("/bye");
    expect(body.ended.map((e: { id: string }) => e.id)).toEqual([s.session.id]);
    const cleared = out.headers.getSetCookie();
    expect(cleared.map((h) => parseSetCookie(h).name).sort()).toEqual([...jar.cookies.keys()].sort()); // one header each, not joined
    expect(cleared.every((h) => parseSetCookie(h).options.maxAge === 0)).toBe(true);

    const dead = await proxyRequest(fromPage("/session", { headers: { cookie: jar.header() } }), { url: multi });
    expect(dead.status).toBe(401);
    expect(dead.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(dead.headers.getSetCookie()).toEqual(await rawSetCookie(multi, jar.header())); // same count, same bytes, same order
  });

  it("sessiond unreachable is a 502; a path outside the prefix is a 404 without a call", async () => {
    expect((await proxyRequest(fromPage("/session"), { url: inject("closed") })).status).toBe(502);
    const rec = recording();
    const outside = await proxyRequest(new Request("https://app.example.test/api/authx/session"), { url: multi, fetch: rec.fetch });
    expect(outside.status).toBe(404);
    for (const operators of ["/metrics", "/readyz", "/healthz", "/openapi.yaml", "/sessions/x", "/session/../metrics", "/users/x/sessions/y", ""]) {
      const res = await proxyRequest(new Request("https://app.example.test/api/auth" + operators), { url: multi, fetch: rec.fetch });
      expect({ operators, status: res.status }).toEqual({ operators, status: 404 });
    }
    expect(rec.sent).toHaveLength(0);
  });
});

describe("sessiond unavailable is never signed out", () => {
  const cookie = { headers: new Headers({ cookie: "__session=st_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }) };
  for (const [what, key, timeoutMs] of [
    ["nothing listens", "closed", undefined],
    ["a 500 without a problem body", "broken", undefined],
    // 300 ms: the server never answers, so this only decides which error it is.
    ["no answer within timeoutMs", "hanging", 300],
  ] as const) {
    it(what, async () => {
      const client = createSessiondClient({ url: inject(key), apiKey, timeoutMs });
      const err = await client.authenticateRequest(cookie).catch((e) => e);
      expect(err).toBeInstanceOf(SessiondError);
      expect(err.isUnavailable).toBe(true);
      const err2 = await client.signIn({ userId: "x", request: cookie }).catch((e) => e);
      expect(err2.isUnavailable).toBe(true);
    });
  }
});

describe("parseSetCookie", () => {
  it("round-trips every Set-Cookie sessiond wrote in these tests", () => {
    expect(seen.size).toBeGreaterThanOrEqual(6);
    for (const h of seen) expect(serializeSetCookie(parseSetCookie(h))).toBe(h);
  });

  it("reads the attributes frameworks need", () => {
    expect(parseSetCookie("__Host-s=st_x; Path=/; Domain=example.com; Expires=Wed, 09 Dec 2026 10:00:00 GMT; Max-Age=60; HttpOnly; Secure; SameSite=Strict; Partitioned")).toEqual({
      name: "__Host-s",
      value: "st_x",
      options: { path: "/", domain: "example.com", expires: new Date("2026-12-09T10:00:00Z"), maxAge: 60, httpOnly: true, secure: true, sameSite: "strict", partitioned: true },
    });
  });
});

describe("cookieName", () => {
  it("only the configured name and its account cookies count", async () => {
    const rec = recording();
    const client = createSessiondClient({ url: single, apiKey, cookieName: "__Host-sid", fetch: rec.fetch });
    const auth = await client.authenticateRequest(new Request("https://x/", { headers: { cookie: "__session=st_other" } }));
    expect(auth.isSignedIn).toBe(false);
    expect(rec.sent).toHaveLength(0);
    await client.authenticateRequest(new Request("https://x/", { headers: { cookie: "__session=st_other; __Host-sid=st_mine; __Host-sid_sess_1=st_acc" } }));
    expect(rec.sent[0].get("cookie")).toBe("__Host-sid=st_mine; __Host-sid_sess_1=st_acc");
  });
});
