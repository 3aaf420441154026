/// <reference types="node" />
// The server entries under a real edge runtime (the edge-runtime package's
// VM: no process, no require, no Node builtins), the builtins check, and
// the browser export condition. Node project only (it drives the VM and
// esbuild itself).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { EdgeRuntime } from "edge-runtime";
import { describe, expect, inject, it } from "vitest";

const pkg = resolve(import.meta.dirname, "../..");

async function iife(entry: string, globalName: string): Promise<string> {
  const r = await build({ entryPoints: [join(pkg, entry)], bundle: true, write: false, format: "iife", globalName, platform: "neutral", target: "es2022", logLevel: "silent" });
  return r.outputFiles[0].text;
}

describe("in edge-runtime's VM", () => {
  it("signs in, authenticates by cookie and verifies a webhook, with no Node in reach", async () => {
    const rt = new EdgeRuntime();
    rt.evaluate(await iife("src/server.ts", "server"));
    rt.evaluate(await iife("src/webhooks.ts", "webhooks"));
    const out = await rt.evaluate(`(async () => {
      const client = server.createSessiondClient({ url: ${JSON.stringify(inject("multi"))}, apiKey: ${JSON.stringify(inject("apiKey"))} });
      const s = await client.signIn({ userId: "edge-vm" });
      const cookie = s.setCookie.map((h) => h.split(";")[0]).join("; ");
      const auth = await client.authenticateRequest(new Request("https://app.example.test/", { headers: { cookie } }));
      const out = await client.signOut(new Request("https://app.example.test/", { headers: { cookie } }));
      let bad;
      try { await webhooks.verifyWebhook(new Request("https://x/", { method: "POST", body: "{}", headers: { "webhook-id": "evt_1", "webhook-timestamp": String(Math.floor(Date.now() / 1000)), "webhook-signature": "v1,AAAA" } }), { secret: ${JSON.stringify(inject("webhookSecret"))} }); } catch (e) { bad = e.name; }
      return JSON.stringify({ node: typeof process + typeof require, setCookie: s.setCookie.length, userId: auth.userId, ended: out.ended.length, cleared: out.setCookie.length, bad });
    })()`);
    expect(JSON.parse(out)).toEqual({ node: "undefinedundefined", setCookie: 2, userId: "edge-vm", ended: 1, cleared: 2, bad: "WebhookVerificationError" });
  });
});

describe("scripts/check-server-entries.mjs", () => {
  const run = (...entries: string[]) => {
    try {
      execFileSync("node", ["scripts/check-server-entries.mjs", ...entries], { cwd: pkg, stdio: "pipe" });
      return 0;
    } catch (e) {
      return (e as { status: number }).status;
    }
  };
  it("passes the package's server entries", () => expect(run()).toBe(0));
  it("fails an entry that imports node:crypto", () => expect(run("test/fixtures/uses-node-crypto.ts")).toBe(1));
  it("fails an entry that imports a builtin without the node: prefix", () => expect(run("test/fixtures/uses-bare-builtin.ts")).toBe(1));
});

describe("the browser export condition of @sessiond/js/server", () => {
  // Bundles `import "@sessiond/js/server"` as an app would, through the
  // package's exports map (dist/, built by `npm run build`).
  async function bundle(conditions: string[]) {
    expect(existsSync(join(pkg, "dist/server.js")), "run npm run build first").toBe(true);
    const app = mkdtempSync(join(tmpdir(), "sessiond-browser-condition-"));
    mkdirSync(join(app, "node_modules/@sessiond"), { recursive: true });
    symlinkSync(pkg, join(app, "node_modules/@sessiond/js"));
    const r = await build({ stdin: { contents: `export * from "@sessiond/js/server";`, resolveDir: app }, bundle: true, write: false, format: "iife", platform: "browser", conditions, logLevel: "silent" });
    return r.outputFiles[0].text;
  }
  it("throws at import in a page", async () => {
    const code = await bundle([]);
    expect(code).not.toContain("createSessiondClient");
    expect(() => new Function(code)()).toThrow(/servers only/);
  });
  it("is the real client for Workers and edge functions", async () => {
    for (const conditions of [["workerd", "worker"], ["edge-light"]]) {
      const code = await bundle(conditions);
      expect(code).toContain("createSessiondClient");
      expect(() => new Function(code)()).not.toThrow();
    }
  });
});
