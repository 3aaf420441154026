// Fails when a server entry (or anything it imports) reaches a Node builtin
// (`node:crypto`, `fs`, …): those entries must run on edge runtimes and
// Workers too. Each entry is bundled with esbuild for the "neutral"
// platform, frameworks external; any builtin import is an error.
//   node scripts/check-server-entries.mjs [entry …]   (default: the package's server entries)
import { build } from "esbuild";
import { existsSync } from "node:fs";
import { builtinModules } from "node:module";

const entries = process.argv.slice(2).length ? process.argv.slice(2) : ["src/server.ts", "src/webhooks.ts", "src/next.ts", "src/astro.ts"].filter((f) => existsSync(f));

const builtins = new Set(builtinModules.flatMap((m) => [m, "node:" + m]));
const noBuiltins = {
  name: "no-node-builtins",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.path.startsWith("node:") || builtins.has(args.path) || builtins.has(args.path.split("/")[0])) {
        return { errors: [{ text: `${args.importer} imports the Node builtin "${args.path}"; server entries must run on edge runtimes` }] };
      }
      return undefined;
    });
  },
};

let failed = false;
for (const entry of entries) {
  try {
    await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      platform: "neutral",
      format: "esm",
      mainFields: ["module", "main"],
      external: ["next", "next/*", "react", "react/*", "react-dom", "astro", "astro/*", "astro:*"],
      plugins: [noBuiltins],
      logLevel: "silent",
    });
    console.log(`${entry}: no Node builtins`);
  } catch (err) {
    failed = true;
    for (const e of err.errors ?? [err]) console.error(`${entry}: ${e.text ?? e.message}`);
  }
}
process.exit(failed ? 1 : 0);
