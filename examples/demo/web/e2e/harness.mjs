// The e2e harness: the real sessiond and demo binaries (built by
// examples/demo/run.sh) on loopback ports, one pair per session mode, and
// Debian's Chromium driven by playwright-core. The app is reached as
// http://app.example.test:<port> (mapped to 127.0.0.1 by Chromium's host
// resolver rules), so cookies behave as for a real host, not localhost.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { chromium } from "playwright-core";

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the e2e tests with examples/demo/run.sh e2e (make demo-e2e)`);
  return v;
};

export const HOST = "app.example.test";
export const COOKIE = "__session";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(url, ms = 30000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function start(bin, args, env, name, log) {
  const p = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const keep = (b) => {
    log.push(`[${name}] ${b}`);
    if (log.length > 200) log.shift();
  };
  p.stdout.on("data", keep);
  p.stderr.on("data", keep);
  return p;
}

function stop(p) {
  if (!p || p.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once("exit", resolve);
    p.kill("SIGTERM");
  });
}

/** Stack is one sessiond (in `mode`) with its own database and one demo app in front of it. */
export class Stack {
  constructor(mode) {
    this.mode = mode;
    this.log = [];
  }

  async start() {
    this.sport = await freePort();
    this.dport = await freePort();
    await this.startSessiond();
    this.demo = start(need("DEMO_BIN"), [], {
      SESSIOND_URL: `http://127.0.0.1:${this.sport}`,
      SESSIOND_API_KEY: need("SESSIOND_API_KEY"),
      DEMO_ADDR: `127.0.0.1:${this.dport}`,
      DEMO_WEB_DIR: need("DEMO_WEB_DIR"),
    }, "demo", this.log);
    await waitFor(`http://127.0.0.1:${this.dport}/`);
    this.url = `http://${HOST}:${this.dport}`;
    return this;
  }

  async startSessiond() {
    this.sessiond = start(need("SESSIOND_BIN"), ["serve"], {
      SESSIOND_DATABASE_URL: `${need("DEMO_DB")}/sessiond_${this.mode}?sslmode=disable`,
      SESSIOND_ADDR: `127.0.0.1:${this.sport}`,
      SESSIOND_API_KEYS: need("SESSIOND_API_KEY"),
      SESSIOND_SESSION_MODE: this.mode,
      SESSIOND_COOKIE_SECURE: "false",
    }, "sessiond", this.log);
    await waitFor(`http://127.0.0.1:${this.sport}/readyz`);
  }

  stopSessiond() {
    return stop(this.sessiond);
  }

  async close() {
    await Promise.all([stop(this.demo), stop(this.sessiond)]);
  }
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
    ],
  });
}

/** sessionCookies are the names of sessiond's cookies the browser holds (active and account cookies). */
export async function sessionCookies(context) {
  return (await context.cookies()).map((c) => c.name).filter((n) => n === COOKIE || n.startsWith(COOKIE + "_")).sort();
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
