// The server entries' tests, against the real sessiond and Postgres
// (test/server/setup.ts), run twice: under Node and under Vercel's
// edge-runtime (the globals of an edge function: no process, no Node
// builtins reachable from the code under test).
import { defineConfig } from "vitest/config";

const shared = { include: ["test/server/**/*.test.ts"], globalSetup: ["test/server/setup.ts"], testTimeout: 30000, hookTimeout: 120000 };

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, include: [...shared.include, "test/server/**/*.node.ts"], name: "node", environment: "node" } },
      { test: { ...shared, name: "edge", environment: "edge-runtime" } },
    ],
  },
});
