// What a page (or a server bundle) pays: each entry bundled with esbuild (minified, ESM,
// frameworks external), gzipped with node:zlib at level 9. Fails over budget.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

const cases = [
  { name: "core + React <SignOutButton> (react external)", code: `export { createSessiond } from "./src/index.ts"; export { SessiondProvider, SignOutButton } from "./src/react.tsx";`, budget: 5 * 1024 },
  { name: "custom element <sessiond-sign-out>", code: `import "./src/element.ts";`, budget: 4 * 1024 },
  { name: "server core @sessiond/js/server", code: `export * from "./src/server.ts";`, budget: 3 * 1024 },
  { name: "server core + Next adapter @sessiond/js/next (next, react external)", code: `export * from "./src/next.ts";`, budget: 3 * 1024 + 1536, external: ["./next-client.js"] },
  { name: "Next client provider (the page's part; React adapter external)", code: `export * from "./src/next-client.tsx";`, budget: 1536, external: ["./react.js"] },
  { name: "server core + Astro middleware @sessiond/js/astro", code: `export * from "./src/astro.ts";`, budget: 3 * 1024 + 1536 },
  { name: "webhooks @sessiond/js/webhooks", code: `export * from "./src/webhooks.ts";`, budget: 1024 },
];

let over = false;
for (const c of cases) {
  const r = await build({
    stdin: { contents: c.code, resolveDir: process.cwd(), loader: "ts" },
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2020",
    jsx: "automatic",
    external: ["react", "react/jsx-runtime", "react-dom", "vue", "next", "next/*", "astro", "astro/*", ...(c.external ?? [])],
    write: false,
    logLevel: "warning",
  });
  const js = r.outputFiles[0].contents;
  const gz = gzipSync(js, { level: 9 }).length;
  const ok = gz <= c.budget;
  over ||= !ok;
  console.log(`${c.name}: ${js.length} B minified, ${gz} B gzipped (budget ${c.budget} B)${ok ? "" : "  OVER BUDGET"}`);
}
process.exit(over ? 1 : 0);
