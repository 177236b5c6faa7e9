// What the dashboard's e2e run and its benchmark share: a free port, the morningai binary
// started in embedded mode on it (and stopped), and JSON calls to its API.
import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
export const bin = path.resolve(repo, process.env.MORNINGAI_BIN ?? `${process.env.CARGO_TARGET_DIR ?? "target"}/debug/morningai`);
const T = 60_000;

export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

function withoutServices(env) {
  const { DATABASE_URL: _db, REDIS_URL: _redis, ...rest } = env;
  return rest;
}

/** The environment of a morningai process on `dir`: embedded mode, whatever services the
 *  calling shell points at. */
function envFor(dir, extra) {
  return { ...withoutServices(process.env), MORNINGAI_DATA_DIR: path.join(dir, "data"), MORNINGAI_LOG_LEVEL: "warn", ...extra };
}

/** Starts `morningai serve`; resolves once /readyz answers. */
export async function startServer(dir, port, key) {
  const child = spawn(bin, ["--config", path.join(dir, "config.toml"), "serve"], {
    env: envFor(dir, { MORNINGAI_LISTEN: `127.0.0.1:${port}`, MORNINGAI_SIGNING_KEY: key }),
    stdio: ["ignore", "inherit", "inherit"],
  });
  const deadline = Date.now() + T;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.ok) return child;
    } catch {}
    if (Date.now() > deadline) throw new Error("serve did not become ready");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a CLI command on the same data directory (beside a running serve); returns its JSON. */
export function cli(dir, args, extra = {}) {
  const r = spawnSync(bin, ["--config", path.join(dir, "config.toml"), ...args], { env: envFor(dir, extra), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`morningai ${args.join(" ")}: ${r.status} ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", () => r(true)));
  child.kill("SIGTERM");
  // Open event streams must not hold the shutdown up.
  const stopped = await Promise.race([exited, new Promise((r) => setTimeout(() => r(false), 15_000))]);
  if (!stopped) {
    child.kill("SIGKILL");
    throw new Error("serve did not stop within 15 s of SIGTERM");
  }
}

export async function api(base, token, method, p, body) {
  const r = await fetch(`${base}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}


/** Signs up or logs in over the API; returns the session. */
export async function session(base, route, body) {
  const r = await fetch(`${base}/api/v1/auth/${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${route}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Signs in through the login page `page` is on (or is sent to). */
export async function signIn(page, email, password) {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}
