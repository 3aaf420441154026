// The example runs from this repository: @sessiond/js is ../../js (file:),
// so the workspace root for Turbopack is the repository.
import { fileURLToPath } from "node:url";

/** @type {import("next").NextConfig} */
export default {
  turbopack: { root: fileURLToPath(new URL("../..", import.meta.url)) },
  outputFileTracingRoot: fileURLToPath(new URL("../..", import.meta.url)),
};
