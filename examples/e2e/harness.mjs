// The end-to-end harness of the demo (examples/demo/web/e2e, run by
// examples/demo/run.sh e2e) and of the framework examples (examples/next,
// examples/astro; run by examples/e2e/run.sh): a database of its own in the
// Postgres container the run script started (examples/e2e/lib.sh), the real
// sessiond built from this tree, the app in front of it (the demo's Go
// server, `next start`, the Astro node server: a parameter of Stack), and
// Debian's Chromium driven by playwright-core (passed in by the test, which
// resolves it from its own node_modules). The app is reached as
// http://app.example.test:<port> (Chromium's host resolver rules map it to
// 127.0.0.1) so cookies behave as for a real host; evil.test is another site.
import { execFileSync, spawn } from "node:child_process";
import { createServer } from "node:net";
import { after, before } from "node:test";

export const HOST = "app.example.test";
export const EVIL = "evil.test";
export const COOKIE = "__session";

/** need is the environment variable `name`, which the run scripts set. */
export const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests with examples/demo/run.sh e2e or examples/e2e/run.sh (make demo-e2e, make examples-e2e)`);
  return v;
};

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor(url, ms = 60000) {
  const until = Date.now() + ms; // only catches a server that never starts
  for (;;) {
    try {
      const r = await fetch(url, { redirect: "manual" });
      if (r.status < 500) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function start(bin, args, env, name, log, cwd) {
  const p = spawn(bin, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const keep = (b) => {
    log.push(`[${name}] ${b}`);
    if (log.length > 300) log.shift();
  };
  p.stdout.on("data", keep);
  p.stderr.on("data", keep);
  return p;
}

function stop(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once("exit", resolve);
    p.kill("SIGTERM");
  });
}

/**
 * Stack: a database of its own (`db`), a sessiond in `mode` on it and the app in front of it. `app(port)` is
 * the app's command line (run in `cwd`); it gets SESSIOND_URL and SESSIOND_API_KEY, and `listenEnv(port)` tells
 * it to listen on 127.0.0.1:port (by default PORT and HOST, as Next.js and Astro's node server read them).
 * The app is up once `ready` (a path) answers below 500.
 */
export class Stack {
  constructor({ mode = "multi", db, app, cwd, listenEnv = (port) => ({ PORT: String(port), HOST: "127.0.0.1" }), ready = "/sign-in" }) {
    Object.assign(this, { mode, db, app, cwd, listenEnv, ready });
    this.log = [];
    this.apiKey = need("SESSIOND_API_KEY");
  }

  async start() {
    execFileSync("docker", ["exec", need("E2E_PG"), "psql", "-q", "-U", "postgres", "-h", "127.0.0.1", "-c", `CREATE DATABASE ${this.db}`], { stdio: "ignore" });
    this.sport = await freePort();
    this.aport = await freePort();
    this.sessiondURL = `http://127.0.0.1:${this.sport}`;
    await this.startSessiond();
    const [cmd, ...args] = this.app(this.aport);
    this.server = start(cmd, args, { SESSIOND_URL: this.sessiondURL, SESSIOND_API_KEY: this.apiKey, ...this.listenEnv(this.aport) }, "app", this.log, this.cwd);
    await waitFor(`http://127.0.0.1:${this.aport}${this.ready}`);
    this.url = `http://${HOST}:${this.aport}`;
    return this;
  }

  async startSessiond() {
    this.sessiond = start(need("SESSIOND_BIN"), ["serve"], {
      SESSIOND_DATABASE_URL: `${need("E2E_DB")}/${this.db}?sslmode=disable`,
      SESSIOND_ADDR: `127.0.0.1:${this.sport}`,
      SESSIOND_API_KEYS: this.apiKey,
      SESSIOND_SESSION_MODE: this.mode,
      SESSIOND_COOKIE_SECURE: "false",
    }, "sessiond", this.log);
    await waitFor(`${this.sessiondURL}/readyz`);
  }

  stopSessiond() {
    return stop(this.sessiond);
  }

  /** backend calls sessiond with the API key. */
  async backend(method, path) {
    const r = await fetch(this.sessiondURL + path, { method, headers: { Authorization: `Bearer ${this.apiKey}` } });
    return { status: r.status, body: await r.json() };
  }

  /** getSessionCount: GET /session answers sessiond has counted (its /metrics), whatever the status. */
  async getSessionCount() {
    const text = await (await fetch(this.sessiondURL + "/metrics")).text();
    let n = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith("sessiond_http_requests_total{") && line.includes('method="GET"') && line.includes('route="/session"')) n += Number(line.split(" ").pop());
    }
    return n;
  }

  async close() {
    await Promise.all([stop(this.server), stop(this.sessiond)]);
  }
}

/**
 * useStack starts `stack` and Chromium before the test file's tests and closes both after them (node:test
 * hooks); when the process exits failing, it prints the stack's log. The answer's `browser` is the
 * Chromium the tests use (set once they run).
 */
export function useStack(stack, chromium) {
  const run = { browser: undefined };
  before(async () => {
    await stack.start();
    run.browser = await launch(chromium);
  });
  after(async () => {
    await run.browser?.close();
    await stack.close();
  });
  process.on("exit", (code) => code && console.error(stack.log.join("")));
  return run;
}

export function launch(chromium) {
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
      `--host-resolver-rules=MAP ${HOST} 127.0.0.1, MAP ${EVIL} 127.0.0.1`,
    ],
  });
}

/** sessionCookies: sessiond's cookies in the browser's jar (the active one and the account cookies). */
export async function sessionCookies(context) {
  return (await context.cookies()).filter((c) => c.name === COOKIE || c.name.startsWith(COOKIE + "_"));
}

/** sessionCookieNames: the names of sessiond's cookies in the browser's jar, sorted. */
export async function sessionCookieNames(context) {
  return (await sessionCookies(context)).map((c) => c.name).sort();
}
