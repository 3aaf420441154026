// examples/astro built with `astro build` (node adapter, standalone), in
// Debian's Chromium against the real sessiond (multi mode) and Postgres.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { COOKIE, Stack, sessionCookies, useStack } from "../../e2e/harness.mjs";

const stack = new Stack({ db: "example_astro", cwd: new URL("..", import.meta.url).pathname, app: () => ["node", "dist/server/entry.mjs"] });
const run = useStack(stack, chromium);

test("SSR who-am-I, and <SignOutButton asChild> signs out with the page's own button", async () => {
  const context = await run.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${stack.url}/`);
  assert.equal(await page.getByTestId("server-status").innerText(), "Signed out");
  await page.getByTestId("sign-in").locator("input[name=user_id]").fill("ada");
  await page.getByTestId("sign-in").locator("button[type=submit]").click();
  await page.getByTestId("server-status").filter({ hasText: "Signed in as ada" }).waitFor({ timeout: 15000 });
  const jar = await sessionCookies(context);
  assert.deepEqual(jar.map((c) => c.name).filter((n) => n !== COOKIE).length, 1, "the active cookie and one account cookie");
  const sessionId = jar.find((c) => c.name !== COOKIE).name.slice(COOKIE.length + 1);

  // The first HTML, without JavaScript, already says who is signed in.
  const noJS = await run.browser.newContext({ javaScriptEnabled: false });
  await noJS.addCookies(await context.cookies());
  const p2 = await noJS.newPage();
  assert.match(await (await p2.goto(`${stack.url}/`)).text(), /Signed in as ada/);
  await noJS.close();

  // asChild: the page's own button is the one rendered, and the default one is not.
  assert.equal(await page.getByRole("button", { name: "Sign out" }).count(), 0);
  await page.getByTestId("my-sign-out").click();
  await page.getByTestId("server-status").filter({ hasText: "Signed out" }).waitFor({ timeout: 15000 });
  assert.equal((await stack.backend("GET", `/sessions/${sessionId}`)).body.status, "ended");
  assert.deepEqual(await sessionCookies(context), []);
  await context.close();
});
