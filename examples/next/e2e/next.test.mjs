// examples/next built with `next build`, run with `next start`, in Debian's
// Chromium against the real sessiond (multi mode) and Postgres.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { COOKIE, EVIL, Stack, freePort, sessionCookies, useStack } from "../../e2e/harness.mjs";

const stack = new Stack({ db: "example_next", cwd: new URL("..", import.meta.url).pathname, app: (port) => ["node_modules/.bin/next", "start", "-p", String(port), "-H", "127.0.0.1"] });
const run = useStack(stack, chromium);

const status = (page) => page.getByTestId("server-status").innerText();

async function signIn(context, user, to = "/") {
  const page = await context.newPage();
  await page.goto(`${stack.url}/sign-in?redirect_url=${encodeURIComponent(to)}`);
  await page.getByTestId("sign-in").locator("input[name=user_id]").fill(user);
  await page.getByTestId("sign-in").locator("button[type=submit]").click();
  await page.getByTestId("server-status").filter({ hasText: user }).waitFor({ timeout: 15000 });
  return page;
}

test("the first HTML already shows the user, also with JavaScript disabled; the jar holds exactly sessiond's cookies", async () => {
  const context = await run.browser.newContext();
  const page = await signIn(context, "ada", "/protected");
  const sessionId = await page.getByTestId("session-id").innerText();
  const jar = await context.cookies();
  assert.deepEqual(jar.map((c) => c.name).sort(), [COOKIE, `${COOKIE}_${sessionId}`].sort(), "no cookie but sessiond's");
  const { body: session } = await stack.backend("GET", `/sessions/${sessionId}`);
  for (const c of jar) {
    assert.match(c.value, /^st_[A-Za-z0-9_-]{43}$/);
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, "Lax");
    assert.equal(c.path, "/");
    assert.equal(c.secure, false); // SESSIOND_COOKIE_SECURE=false in this test
    assert.equal(c.domain, "app.example.test"); // host-only, as sessiond set it
    assert.ok(Math.abs(c.expires - Date.parse(session.expires_at) / 1000) <= 2, "Max-Age up to the session's expires_at");
  }
  assert.equal(jar[0].value, jar[1].value, "the active cookie and the account cookie hold the same token");

  const noJS = await run.browser.newContext({ javaScriptEnabled: false });
  await noJS.addCookies(jar);
  const p2 = await noJS.newPage();
  const res = await p2.goto(`${stack.url}/`);
  const html = await res.text();
  assert.match(html, /Signed in as <!-- -->ada|Signed in as ada/);
  assert.match(html, /client: signed in as <!-- -->ada|client: signed in as ada/, "the client component's first render is already signed in");
  assert.doesNotMatch(html, /client: loading/);
  await noJS.close();
  await context.close();
});

test("a protected page redirects the signed out to the sign-in page", async () => {
  const context = await run.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${stack.url}/protected`);
  assert.equal(new URL(page.url()).pathname, "/sign-in");
  assert.equal(new URL(page.url()).searchParams.get("redirect_url"), "/protected");
  await context.close();
  // The middleware's answer travels to auth() in a signed request header; a forged one is ignored.
  const forged = encodeURIComponent(JSON.stringify({ isSignedIn: true, userId: "mallory", sessionId: "sess_x", session: {}, setCookie: [] }));
  const res = await fetch(`http://127.0.0.1:${stack.aport}/`, { headers: { "x-sessiond-auth": `${forged}.${btoa("not the signature")}` } });
  const html = await res.text();
  assert.doesNotMatch(html, /mallory/);
  assert.match(html, /Signed out/);
});

test("after the sign-out action, Back shows the signed-out page", async () => {
  const context = await run.browser.newContext();
  const page = await signIn(context, "bea", "/protected");
  const sessionId = await page.getByTestId("session-id").innerText();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByTestId("server-status").filter({ hasText: "Signed out" }).waitFor({ timeout: 15000 });
  assert.equal((await stack.backend("GET", `/sessions/${sessionId}`)).body.status, "ended");
  assert.deepEqual(await sessionCookies(context), []);
  await page.goBack();
  await page.waitForLoadState();
  // Back lands on the sign-in page (the middleware redirects) or a signed-out render; never the protected content.
  await page.getByText(/Sign in|Signed out/).first().waitFor({ timeout: 15000 });
  assert.equal(await page.getByText("Protected page for").count(), 0);
  assert.equal(await page.getByTestId("client-status").innerText(), "client: signed out");
  await context.close();
});

test("a sign-out on another device changes the page (event stream → router.refresh())", async () => {
  const context = await run.browser.newContext();
  const page = await signIn(context, "cy", "/protected");
  const sessionId = await page.getByTestId("session-id").innerText();
  await page.goto(`${stack.url}/`);
  assert.equal(await status(page), "Signed in as cy");
  await page.waitForTimeout(500); // let the page open its event stream (not a timing assertion: the wait below bounds nothing tighter)
  const t0 = Date.now();
  assert.equal((await stack.backend("DELETE", `/sessions/${sessionId}`)).status, 200); // ended elsewhere (an admin, another device)
  await page.getByTestId("server-status").filter({ hasText: "Signed out" }).waitFor({ timeout: 10000 }); // a bound that only catches a hang
  console.log(`# another device's sign-out reached the server-rendered page in ${Date.now() - t0} ms`);
  assert.equal(await page.getByTestId("client-status").innerText(), "client: signed out");
  await context.close();
});

test("a cross-site form post to the sign-out action ends nothing", async () => {
  const context = await run.browser.newContext();
  const page = await signIn(context, "dee", "/protected");
  const sessionId = await page.getByTestId("session-id").innerText();
  // The real sign-out form, action ID and all, served from another site.
  const form = await page.locator("form").filter({ has: page.getByRole("button", { name: "Sign out" }) }).evaluate((f) => f.outerHTML);
  const evilPort = await freePort();
  const evil = createServer((_req, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<!doctype html><body>${form.replace(/<form[^>]*>/, `<form id="f" method="POST" enctype="multipart/form-data" action="${stack.url}/protected">`)}<script>document.getElementById("f").submit()</script>`);
  });
  await new Promise((r) => evil.listen(evilPort, "127.0.0.1", r));
  try {
    const attacker = await context.newPage();
    await attacker.goto(`http://${EVIL}:${evilPort}/`);
    await attacker.waitForURL((u) => u.host !== `${EVIL}:${evilPort}`, { timeout: 15000 }).catch(() => undefined);
    await attacker.waitForLoadState();
    await attacker.close();
  } finally {
    evil.close();
  }
  assert.equal((await stack.backend("GET", `/sessions/${sessionId}`)).body.status, "active");
  assert.equal((await sessionCookies(context)).length, 2);
  await page.reload();
  assert.match(await status(page), /Protected page for dee/);
  await context.close();
});

test("at most one GET /session per navigation, none per prefetch (sessiond's metrics)", async () => {
  const context = await run.browser.newContext();
  const page = await signIn(context, "eve", "/");
  await page.waitForLoadState("networkidle");
  await page.waitForTimeout(1500); // let the sign-in's own events reach the page and settle (not a timing assertion)
  const fromPage = [];
  page.on("request", (r) => new URL(r.url()).pathname === "/api/auth/session" && fromPage.push(r.url()));
  const measure = async (what, navigate) => {
    fromPage.length = 0;
    const before = await stack.getSessionCount();
    await navigate();
    await page.waitForLoadState("networkidle");
    const total = (await stack.getSessionCount()) - before;
    console.log(`# ${what}: ${total} GET /session at sessiond (${fromPage.length} of them the page's own background check)`);
    return { total, server: total - fromPage.length };
  };
  // A client-side navigation: the middleware authenticates; auth() in the layout and the page reuse its answer.
  await page.evaluate(() => (window.stillThisDocument = true));
  const soft = await measure("client-side navigation to /protected", async () => {
    await page.getByRole("link", { name: "Protected" }).click();
    await page.getByTestId("server-status").filter({ hasText: "Protected page for eve" }).waitFor({ timeout: 15000 });
  });
  assert.equal(await page.evaluate(() => window.stillThisDocument), true, "the link navigated client-side, without a page load");
  assert.ok(soft.total <= 1, `${soft.total} GET /session for one client-side navigation`);
  // A full page load: one on the server; the page revalidates what the server rendered with its client's
  // account list (which authenticates the same cookie), not with a second GET /session.
  const full = await measure("full page load of /", () => page.goto(`${stack.url}/`));
  assert.ok(full.server <= 1, `${full.server} GET /session on the server for one page load`);
  assert.ok(full.total <= 1, `${full.total} GET /session for one full page load`);
  await context.close();
});

test("sessiond stopped: the protected page is unavailable (503), no redirect, cookies kept", async () => {
  const context = await run.browser.newContext();
  const page = await signIn(context, "fay", "/protected");
  const jar = await sessionCookies(context);
  await stack.stopSessiond();
  try {
    const res = await page.goto(`${stack.url}/protected`);
    assert.equal(res.status(), 503);
    assert.equal(new URL(page.url()).pathname, "/protected");
    assert.match(await page.content(), /unavailable/i);
    assert.deepEqual(await sessionCookies(context), jar);
    const home = await page.goto(`${stack.url}/`);
    assert.equal(home.status(), 200, "an unprotected page still renders");
    assert.equal(await page.getByTestId("client-status").innerText(), "client: unavailable");
  } finally {
    await stack.startSessiond();
  }
  await page.goto(`${stack.url}/protected`);
  assert.match(await status(page), /Protected page for fay/);
  await context.close();
});
