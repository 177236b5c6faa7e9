// The dashboard's numbers (BENCHMARKS.md, "Dashboard"): the JavaScript a first visit to /
// downloads (bytes on the wire, gzip), the time from a task event stored by the server to
// its line in an open home page over N echo tasks, and Lighthouse's performance and
// accessibility scores for the home and a document page (signed in; mobile and desktop).
//
//   MORNINGAI_BIN=target/release/morningai node web/e2e/bench.mjs [N]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import lighthouse from "lighthouse";
import desktopConfig from "lighthouse/core/config/desktop-config.js";
import { chromium } from "playwright-core";
import { api, freePort, session, signIn, startServer, stopServer } from "./harness.mjs";

const N = Number(process.argv[2] ?? 200);

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const dir = mkdtempSync(path.join(os.tmpdir(), "morningai-bench-"));
writeFileSync(path.join(dir, "config.toml"), "");
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = await startServer(dir, port, "bench-signing-key-0123456789abcdefghij");
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const owner = await session(base, "signup", { email: "bench@example.com", password: "correct horse battery" });
  // A first visit: a new browser profile opens /, lands on the login page, signs in and
  // sees the home page. What it downloads is counted as sent (gzip, content-length).
  const context = await browser.newContext({ baseURL: base });
  const page = await context.newPage();
  const scripts = [];
  page.on("response", (res) => {
    if (res.request().resourceType() === "script") scripts.push({ url: res.url(), bytes: Number(res.headers()["content-length"] ?? 0), encoding: res.headers()["content-encoding"] });
  });
  await page.goto("/");
  await signIn(page, "bench@example.com", "correct horse battery");
  await page.getByText("live", { exact: true }).waitFor();
  await page.waitForTimeout(500);
  const js = scripts.reduce((a, s) => a + s.bytes, 0);
  console.log(`first visit (login, then home): ${scripts.length} scripts, ${(js / 1024).toFixed(1)} KiB on the wire`);
  for (const s of scripts) console.log(`  ${(s.bytes / 1024).toFixed(1)} KiB ${s.encoding ?? "identity"}  ${new URL(s.url).pathname}`);

  // Event → page: each new feed line records when it appeared, beside the event's time.
  await page.evaluate(() => {
    globalThis.seen = [];
    new MutationObserver((records) => {
      const now = performance.timeOrigin + performance.now();
      for (const r of records) for (const n of r.addedNodes) if (n instanceof HTMLElement && n.dataset.at) globalThis.seen.push([n.dataset.at, now]);
    }).observe(document.body, { childList: true, subtree: true });
  });
  for (let i = 0; i < N; i++) {
    await api(base, owner.access_token, "POST", "/api/v1/tasks", { kind: "echo", input: { i } });
    await new Promise((r) => setTimeout(r, 20));
  }
  await page.waitForTimeout(2000);
  const seen = await page.evaluate(() => globalThis.seen);
  const ms = seen.map(([at, t]) => t - Date.parse(at)).sort((a, b) => a - b);
  console.log(
    `event → page: ${ms.length} events of ${N} tasks; p50 ${quantile(ms, 0.5).toFixed(1)} ms, p95 ${quantile(ms, 0.95).toFixed(1)} ms, p99 ${quantile(ms, 0.99).toFixed(1)} ms, max ${ms.at(-1).toFixed(1)} ms`,
  );

  // Lighthouse drives a browser of its own through the DevTools port; that browser's
  // profile holds the session (the refresh cookie), so it opens the pages signed in.
  const doc = await api(base, owner.access_token, "POST", "/api/v1/documents", {
    project_id: (await api(base, owner.access_token, "POST", "/api/v1/projects", { name: "bench" })).id,
    title: "How are requests authenticated?",
    kind: "faq",
    text: "# How are requests authenticated?\n\n## Overview\n\nEvery request carries a bearer token [src/auth.rs:1-4].\n\n```rust\npub fn authenticate(token: &str) -> Option<Session> {\n    sessions().get(token)\n}\n```\n",
  });
  const debugPort = await freePort();
  const profile = mkdtempSync(path.join(os.tmpdir(), "morningai-lh-"));
  const lh = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", `--remote-debugging-port=${debugPort}`],
    baseURL: base,
  });
  const signin = lh.pages()[0] ?? (await lh.newPage());
  await signin.goto("/login");
  await signIn(signin, "bench@example.com", "correct horse battery");
  await signin.getByText("live", { exact: true }).waitFor();
  for (const [name, url] of [["home", `${base}/`], ["document", `${base}/documents/${doc.document.id}`]]) {
    for (const [preset, config] of [["mobile", undefined], ["desktop", desktopConfig]]) {
      // Three runs each: on a shared 2-core machine one run's total blocking time varies.
      const runs = [];
      for (let i = 0; i < 3; i++) {
        const run = await lighthouse(url, { port: debugPort, onlyCategories: ["performance", "accessibility"], disableStorageReset: true, logLevel: "error" }, config);
        if (new URL(run.lhr.finalDisplayedUrl).pathname !== new URL(url).pathname) {
          throw new Error(`lighthouse ended on ${run.lhr.finalDisplayedUrl}, not ${url}: not signed in?`);
        }
        const c = run.lhr.categories;
        const a = run.lhr.audits;
        runs.push({
          perf: Math.round(c.performance.score * 100),
          a11y: Math.round(c.accessibility.score * 100),
          line: `FCP ${a["first-contentful-paint"].displayValue}, LCP ${a["largest-contentful-paint"].displayValue}, TBT ${a["total-blocking-time"].displayValue}, CLS ${a["cumulative-layout-shift"].displayValue}`,
        });
      }
      const median = [...runs].sort((x, y) => x.perf - y.perf)[1];
      console.log(
        `lighthouse ${name} (${preset}): performance ${median.perf} (runs ${runs.map((r) => r.perf).join(", ")}), accessibility ${median.a11y}; median run: ${median.line}`,
      );
    }
  }
  await lh.close();
  rmSync(profile, { recursive: true, force: true });
} finally {
  await browser.close();
  await stopServer(server);
  rmSync(dir, { recursive: true, force: true });
}
