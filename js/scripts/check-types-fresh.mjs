// Fails when src/openapi.d.ts is not what openapi-typescript makes of
// ../openapi.yaml today: run `npm run gen:types` and commit the result.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const out = join(mkdtempSync(join(tmpdir(), "sessiond-types-")), "openapi.d.ts");
execFileSync(join("node_modules", ".bin", "openapi-typescript"), ["../openapi.yaml", "-o", out], { stdio: ["ignore", "ignore", "inherit"] });
if (readFileSync(out, "utf8") !== readFileSync("src/openapi.d.ts", "utf8")) {
  console.error("src/openapi.d.ts is stale: openapi.yaml changed. Run `npm run gen:types` in js/ and commit it.");
  process.exit(1);
}
console.log("src/openapi.d.ts matches openapi.yaml");
