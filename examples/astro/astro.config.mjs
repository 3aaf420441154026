import node from "@astrojs/node";
import { defineConfig } from "astro/config";

export default defineConfig({
  output: "server",
  adapter: node({ mode: "standalone" }),
  // The hosts this app answers as (the tests reach it as app.example.test), so
  // Astro's same-origin check of form posts compares against the real host.
  security: { allowedDomains: [{ hostname: "app.example.test" }, { hostname: "localhost" }, { hostname: "127.0.0.1" }] },
});
