// The committed client types must be what `npm run gen:api` makes of the committed OpenAPI
// document (which a Rust test keeps equal to the server's).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, it } from "vitest";

const web = path.resolve(import.meta.dirname, "../..");

it("src/api/schema.d.ts is generated from openapi.json", () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "schema-")), "schema.d.ts");
  const cli = path.join(web, "node_modules/openapi-typescript/bin/cli.js");
  execFileSync(process.execPath, [cli, "openapi.json", "--empty-objects-unknown", "-o", out], { cwd: web, stdio: "ignore" });
  const fresh = readFileSync(out, "utf8");
  const committed = readFileSync(path.join(web, "src/api/schema.d.ts"), "utf8");
  expect(committed === fresh, "src/api/schema.d.ts is stale: run `npm run gen:api`").toBe(true);
});
