import { resolve } from "node:path";
import { defineConfig } from "vite";

// Three pages, one per way of using @sessiond/js. The Vue page writes its
// components as template strings (seed style without a .vue compiler
// plugin), so it uses Vue's build that compiles templates in the browser.
export default defineConfig({
  resolve: {
    dedupe: ["react", "react-dom", "vue"],
    alias: { vue: "vue/dist/vue.esm-bundler.js" },
  },
  build: {
    rollupOptions: {
      // "use client" marks @sessiond/js/react for React Server Components
      // frameworks; a plain Vite bundle has nothing to keep it for.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
      input: {
        index: resolve(import.meta.dirname, "index.html"),
        vue: resolve(import.meta.dirname, "vue.html"),
        plain: resolve(import.meta.dirname, "plain.html"),
        goodbye: resolve(import.meta.dirname, "goodbye.html"),
      },
    },
  },
});
