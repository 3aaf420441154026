/// <reference types="node" />
// Vitest global setup of the server tests: a real Postgres (Docker, the
// image scripts/ensure-images.sh names), the real sessiond built from this
// tree in single and in multi mode, a webhook receiver sessiond delivers to,
// and three stand-ins for a sick sessiond (a closed port, a 500, a server
// that never answers). The tests get the URLs through inject().
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import type { TestProject } from "vitest/node";

export const API_KEY = "sk_js_server_tests_only";
// A throwaway secret for the test sessiond: whsec_ and base64 of 32 bytes.
export const WEBHOOK_SECRET = "whsec_" + Buffer.from("sessiond js server tests 32bytes").toString("base64");

declare module "vitest" {
  export interface ProvidedContext {
    single: string;
    multi: string;
    receiver: string;
    closed: string;
    broken: string;
    hanging: string;
    apiKey: string;
    webhookSecret: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createNetServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => ok(typeof a === "object" && a ? a.port : 0));
    });
  });
}

async function waitFor(url: string, log: string[], ms = 60000): Promise<void> {
  const until = Date.now() + ms; // a bound that only catches a sessiond that never starts
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${ms} ms:\n${log.join("")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function listen(server: Server): Promise<string> {
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(`http://127.0.0.1:${(server.address() as { port: number }).port}`)));
}

export default async function setup(project: TestProject) {
  const repo = resolve(import.meta.dirname, "../../..");
  const image = process.env.SESSIOND_POSTGRES_IMAGE;
  if (!image) throw new Error('SESSIOND_POSTGRES_IMAGE is not set: run `eval "$(scripts/ensure-images.sh)"` (make js-server-test does)');
  const temp = mkdtempSync(join(tmpdir(), "sessiond-js-server-"));
  let bin = process.env.SESSIOND_BIN;
  if (!bin) {
    bin = join(temp, "sessiond");
    execFileSync("go", ["build", "-o", bin, "./cmd/sessiond"], { cwd: repo, stdio: "inherit" });
  }

  const procs: ChildProcess[] = [];
  const servers: Server[] = [];
  const pg = `sessiond-js-server-pg-${process.pid}-${project.name.replace(/\W/g, "")}`;
  const teardown = async () => {
    for (const p of procs) p.kill("SIGTERM");
    for (const s of servers) s.closeAllConnections?.(), s.close();
    try {
      execFileSync("docker", ["rm", "-f", pg], { stdio: "ignore" });
    } catch {
      // already gone
    }
  };
  try {
    execFileSync("docker", ["run", "-d", "--name", pg, "-e", "POSTGRES_PASSWORD=postgres", "-p", "127.0.0.1::5432", image], { stdio: "ignore" });
    let port = "";
    for (let i = 0; i < 120; i++) {
      try {
        port = execFileSync("docker", ["port", pg, "5432/tcp"]).toString().split("\n")[0].split(":").pop() ?? "";
        execFileSync("docker", ["exec", pg, "pg_isready", "-h", "127.0.0.1", "-U", "postgres"], { stdio: "ignore" });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    for (const db of ["js_single", "js_multi"]) execFileSync("docker", ["exec", pg, "psql", "-q", "-U", "postgres", "-h", "127.0.0.1", "-c", `CREATE DATABASE ${db}`], { stdio: "ignore" });

    // The webhook receiver: acknowledges every delivery and lists them at GET /.
    const deliveries: { headers: Record<string, string>; body: string }[] = [];
    const receiver = createHttpServer((req, res) => {
      if (req.method === "GET") return void res.end(JSON.stringify(deliveries));
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        deliveries.push({ headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), body });
        res.statusCode = 204;
        res.end();
      });
    });
    const broken = createHttpServer((_req, res) => {
      res.statusCode = 500;
      res.end("internal error");
    });
    const hanging = createHttpServer(() => undefined); // never answers
    servers.push(receiver, broken, hanging);
    const receiverURL = await listen(receiver);

    const log: string[] = [];
    const start = async (mode: string) => {
      const port2 = await freePort();
      const p = spawn(bin!, ["serve"], {
        env: {
          ...process.env,
          SESSIOND_DATABASE_URL: `postgres://postgres:postgres@127.0.0.1:${port}/js_${mode}?sslmode=disable`,
          SESSIOND_ADDR: `127.0.0.1:${port2}`,
          SESSIOND_API_KEYS: API_KEY,
          SESSIOND_SESSION_MODE: mode,
          SESSIOND_COOKIE_SECURE: "false",
          SESSIOND_ALLOWED_REDIRECT_ORIGINS: "https://app.example.test",
          ...(mode === "multi" ? { SESSIOND_WEBHOOK_URLS: receiverURL + "/hooks", SESSIOND_WEBHOOK_SECRET: WEBHOOK_SECRET } : {}),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      p.stdout!.on("data", (b) => log.push(`[${mode}] ${b}`));
      p.stderr!.on("data", (b) => log.push(`[${mode}] ${b}`));
      procs.push(p);
      const url = `http://127.0.0.1:${port2}`;
      await waitFor(url + "/readyz", log);
      return url;
    };
    const [single, multi] = await Promise.all([start("single"), start("multi")]);
    project.provide("single", single);
    project.provide("multi", multi);
    project.provide("receiver", receiverURL);
    project.provide("closed", `http://127.0.0.1:${await freePort()}`);
    project.provide("broken", await listen(broken));
    project.provide("hanging", await listen(hanging));
    project.provide("apiKey", API_KEY);
    project.provide("webhookSecret", WEBHOOK_SECRET);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
