// The demo under test: its Stack (the real sessiond and demo binaries, built
// by examples/demo/run.sh, with a database per session mode) and how a test
// uses its pages. Everything else is the shared harness, examples/e2e/harness.mjs.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Stack, need } from "../../../e2e/harness.mjs";

/** demoStack is one sessiond in `mode` with its own database and one demo app (its Go server) in front of it. */
export function demoStack(mode) {
  return new Stack({
    mode,
    db: `sessiond_${mode}`,
    app: () => [need("DEMO_BIN")],
    listenEnv: (port) => ({ DEMO_ADDR: `127.0.0.1:${port}`, DEMO_WEB_DIR: need("DEMO_WEB_DIR") }),
    ready: "/",
  });
}

/** whoami asks sessiond, from a page of this browser (its cookie jar, the app's proxy), who this browser is. */
export async function whoami(context, base) {
  let page = context.pages().find((p) => p.url().startsWith(base));
  const own = !page;
  if (own) {
    page = await context.newPage();
    await page.goto(`${base}/goodbye.html`);
  }
  try {
    return await page.evaluate(async () => {
      const r = await fetch("/api/auth/session", { credentials: "include" });
      return { status: r.status, body: r.ok ? await r.json() : null };
    });
  } finally {
    if (own) await page.close();
  }
}

/** text waits (up to `ms`, a hang-catching bound unless a test says otherwise) until the element's text matches. */
export async function text(page, testId, re, ms = 10000) {
  await page.getByTestId(testId).filter({ hasText: re }).first().waitFor({ timeout: ms });
  return page.getByTestId(testId).first().innerText();
}

export async function signIn(page, user, { form = "sign-in" } = {}) {
  const f = page.getByTestId(form);
  await f.locator("input[name=user_id]").fill(user);
  await f.locator("button[type=submit]").click(); // a form post; the backend answers 303 to the page
  await text(page, "status", new RegExp(`Signed in as ${user}\\b`));
}

export async function shot(page, name) {
  const dir = process.env.DEMO_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, name), fullPage: true });
}
