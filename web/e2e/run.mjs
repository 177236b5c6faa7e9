// End to end: the release (or debug) `morningai` binary on a random port, embedded mode,
// a local fake OpenAI provider for streamed tokens, and Debian's Chromium driven by
// playwright-core. Walks the product as its users do, checks accessibility (axe-core) on
// every page, fails on console errors and failed requests, and writes screenshots of every
// page at 1440×900 and 390×844 to web/e2e/screenshots/.
//
//   MORNINGAI_BIN=target/release/morningai node web/e2e/run.mjs
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startFakeOpenAI } from "./fake-openai.mjs";
import { api, cli, freePort, repo, session as apiSession, signIn, startServer, stopServer } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const shots = path.join(here, "screenshots");
const axeSource = readFileSync(path.join(here, "../node_modules/axe-core/axe.min.js"), "utf8");
const SIZES = { desktop: { width: 1440, height: 900 }, phone: { width: 390, height: 844 } };
const T = 60_000;

let step = "start";
/** The page a failure is photographed from. */
let current = null;
function log(msg) {
  console.log(`e2e: ${msg}`);
}
function check(cond, msg) {
  if (!cond) throw new Error(`${step}: ${msg}`);
}

/** Console errors, page errors and failed requests of every page of a context. */
function watch(context, problems, allowed) {
  context.on("page", (page) => {
    page.on("console", (m) => {
      if (m.type() === "error" && !allowed()) problems.push(`console: ${m.text()} (${page.url()})`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message} (${page.url()})`));
  });
  context.on("requestfailed", (r) => {
    const failure = r.failure()?.errorText ?? "";
    // Streams and downloads end aborted when their page moves on: not a failure.
    if (failure.includes("ERR_ABORTED") || allowed()) return;
    problems.push(`request failed: ${r.method()} ${r.url()} ${failure}`);
  });
  context.on("response", (r) => {
    if (r.status() >= 500 || (r.status() >= 400 && !allowed() && !r.url().includes("/api/v1/auth/refresh"))) {
      problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    }
  });
}

/** axe-core on the page as it is now: no serious or critical violation. */
async function axe(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(bad.length === 0, `axe on ${name}: ${JSON.stringify(bad)}`);
  return result.length;
}

/** Every visible control of the page is reached by Tab from the top of the document (a
 *  radio group counts once: arrows move within it). */
async function keyboardReach(page, name) {
  const total = await page.evaluate(() => {
    for (const el of document.querySelectorAll("[data-kb]")) delete el.dataset.kb;
    const controls =
      'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';
    const groups = new Set();
    let n = 0;
    for (const el of document.querySelectorAll(controls)) {
      // checkVisibility: not rendered, hidden, or inside a closed <details>.
      if (!el.checkVisibility({ visibilityProperty: true }) || el.closest("[inert]")) continue;
      if (el.type === "radio") {
        if (groups.has(el.name)) continue;
        groups.add(el.name);
      }
      el.dataset.kb = String(n++);
    }
    document.activeElement?.blur();
    return n;
  });
  const reached = new Set();
  for (let i = 0; i < total + 10 && reached.size < total; i++) {
    await page.keyboard.press("Tab");
    const k = await page.evaluate(() => {
      const a = document.activeElement;
      const el = a?.type === "radio" ? document.querySelector(`input[type=radio][name="${a.name}"][data-kb]`) : a;
      return el?.dataset.kb ?? null;
    });
    if (k !== null) reached.add(k);
  }
  // The screenshots that follow show the page, not the last control Tab reached.
  await page.evaluate(() => document.activeElement?.blur());
  // Compared with the page as it is now: a list refetched meanwhile may have replaced a
  // control it held.
  if (reached.size < total) {
    const missing = await page.evaluate(
      (seen) =>
        [...document.querySelectorAll("[data-kb]")]
          .filter((el) => !seen.includes(el.dataset.kb))
          .map((el) => `${el.tagName.toLowerCase()} "${(el.getAttribute("aria-label") ?? el.textContent ?? "").trim().slice(0, 40)}"`),
      [...reached],
    );
    check(missing.length === 0, `on ${name}, Tab never reaches: ${missing.join(", ")}`);
  }
}

/** The approvals inbox's item whose text has `text`. */
function inboxItem(page, text) {
  return page
    .getByRole("listitem")
    .filter({ hasText: text })
    .filter({ has: page.getByRole("button", { name: "Approve", exact: true }) });
}

/** Presses Tab until the focused element matches `role` and `name`; fails after `max`. */
async function tabTo(page, role, name, max = 80) {
  const target = page.getByRole(role, { name, exact: true }).first();
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    if (await target.evaluate((el) => el === document.activeElement)) return;
  }
  check(false, `Tab never reached the ${role} "${name}"`);
}

/** Screenshots of the current page at both sizes, axe at both, and every control reached
 *  by keyboard. */
async function capture(page, name) {
  await keyboardReach(page, name);
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(150);
    await axe(page, `${name} (${size})`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `${name} (${size}) is ${overflow} px wider than the window`);
    await page.screenshot({ path: path.join(shots, `${name}-${size}.png`), fullPage: true });
  }
  await page.setViewportSize(SIZES.desktop);
}

/** A link of the main navigation. */
function nav(page, name) {
  return page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "morningai-e2e-"));
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  // A small repository to index.
  const repoDir = path.join(dir, "repo");
  mkdirSync(path.join(repoDir, "src"), { recursive: true });
  writeFileSync(
    path.join(repoDir, "src/auth.rs"),
    "/// Checks the bearer token of a request and returns its session.\npub fn authenticate(token: &str) -> Option<Session> {\n    sessions().get(token)\n}\n\n/// Ends a session.\npub fn logout(session: &Session) {\n    sessions().remove(&session.token);\n}\n",
  );
  writeFileSync(path.join(repoDir, "README.md"), "# Demo service\n\nAuthentication: every request carries a bearer token; `authenticate` checks it.\n");
  // What the code generation agent is answered: a change to src/auth.rs that applies.
  const fake = await startFakeOpenAI({
    change: {
      plan: ["Read logout in src/auth.rs", "Say in its doc comment that the token stops working"],
      explanation: "Callers should know that a logged-out token is refused at once.",
      diff: "--- a/src/auth.rs\n+++ b/src/auth.rs\n@@ -5,5 +5,6 @@\n \n /// Ends a session.\n+/// The session's token stops working at once.\n pub fn logout(session: &Session) {\n     sessions().remove(&session.token);\n }\n",
    },
  });
  writeFileSync(
    path.join(dir, "config.toml"),
    `index_roots = [${JSON.stringify(repoDir)}]\nchat_base_url = ${JSON.stringify(fake.url)}\nchat_model = "fake-model"\nchat_api_key = "sk-e2e"\n\n[prices."fake-model"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n`,
  );
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let server = await startServer(dir, port, "e2e-signing-key-one-0123456789abcdef");
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  const problems = [];
  // Set while the run provokes errors on purpose (another tenant's ids, a restart).
  let provoking = false;
  const allowed = () => provoking;
  /** A second browser, watched like the first, signed in through the login page. */
  async function signedIn(email, password) {
    const context = await browser.newContext({ viewport: SIZES.desktop, baseURL: base });
    watch(context, problems, allowed);
    const page = await context.newPage();
    current = page;
    await page.goto("/login");
    await signIn(page, email, password);
    await page.getByRole("heading", { name: "Home" }).waitFor();
    return { context, page };
  }
  try {
    const owner = await browser.newContext({ viewport: SIZES.desktop, baseURL: base, acceptDownloads: true });
    watch(owner, problems, allowed);
    const page = await owner.newPage();
    current = page;

    step = "sign up";
    log(step);
    await page.goto("/");
    await page.waitForURL(/\/login/);
    await capture(page, "login");
    await page.getByRole("link", { name: "Create an account" }).click();
    await page.getByLabel("Email").fill("owner@example.com");
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByLabel("Team name").fill("Acme docs");
    await capture(page, "signup");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("heading", { name: "Home" }).waitFor();
    await page.getByText("live", { exact: true }).waitFor();
    await capture(page, "home");
    // The refresh token is an HttpOnly cookie; nothing is kept in storage.
    const stored = await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie);
    check(!stored.includes("mrt_") && !stored.includes("eyJ"), `a token reached storage: ${stored}`);

    step = "index a folder";
    log(step);
    await nav(page, "Memory").click();
    await page.getByLabel("New collection").fill("demo");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.getByRole("button", { name: "demo" }).waitFor();
    await page.getByLabel("Path on the server").fill(repoDir);
    await page.getByRole("button", { name: "Index", exact: true }).click();
    await page.getByTestId("index-progress").getByText("succeeded").waitFor({ timeout: T });
    await page.getByLabel("Query").fill("authenticate bearer token");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.getByTestId("hits").getByText("src/auth.rs").first().waitFor();
    await capture(page, "memory");

    step = "ask";
    log(step);
    await nav(page, "Ask").click();
    await page.getByLabel("New project").fill("demo-service");
    await page.getByRole("button", { name: "Create project" }).click();
    await page.getByLabel("Question").fill("How are requests authenticated?");
    await page.getByLabel("Hold for approval before publishing").check();
    await capture(page, "ask");
    await page.getByRole("button", { name: "Ask", exact: true }).click();
    await page.waitForURL(/\/tasks\//);
    await page.getByTestId("nodes").getByText("write").waitFor({ timeout: T });
    await page.getByTestId("tokens").getByText("## Overview", { exact: false }).waitFor({ timeout: T });
    await page.getByText("Waiting for approval").waitFor({ timeout: T });
    await page.getByTestId("nodes").getByText("(waiting)").waitFor();
    const tokens = await page.getByTestId("tokens").innerText();
    check(tokens.includes("## Troubleshooting"), `streamed tokens incomplete: ${tokens.slice(0, 200)}`);
    await capture(page, "task-awaiting-approval");

    step = "approve";
    log(step);
    await page.getByRole("link", { name: "open the approvals inbox" }).click();
    // Only the inbox has an item with the question and an Approve button (the task page,
    // which stays on screen while the inbox's code loads, shows the question too).
    const opened = Date.now();
    await inboxItem(page, "How are requests authenticated?").waitFor({ timeout: T });
    if (Date.now() - opened > 2000) log(`the inbox showed the pending approval only after ${Date.now() - opened} ms`);
    await capture(page, "approvals");
    // By keyboard alone: Tab to the comment, type, Tab to Approve, Enter.
    await page.evaluate(() => document.activeElement?.blur());
    await tabTo(page, "textbox", "Comment");
    await page.keyboard.type("Looks right");
    await tabTo(page, "button", "Approve");
    await page.keyboard.press("Enter");
    await page.getByText("Nothing pending.").waitFor({ timeout: T });

    step = "read the published document";
    log(step);
    await nav(page, "Documents").click();
    const docLink = page.getByTestId("documents").getByRole("link").first();
    await docLink.waitFor({ timeout: T });
    await page.waitForFunction(() => document.querySelector("[data-testid=documents]")?.textContent?.includes("published"), null, { timeout: T });
    await capture(page, "documents");
    await docLink.click();
    await page.getByTestId("document-text").getByRole("heading", { name: "Overview" }).waitFor();
    const docText = await page.getByTestId("document-text").innerText();
    check(docText.includes("authenticate"), `document text: ${docText.slice(0, 300)}`);
    await page.getByTestId("sources").getByText("src/auth.rs").first().waitFor();
    await capture(page, "document");
    const docUrl = page.url();

    step = "edit, diff, export";
    log(step);
    await page.getByRole("tab", { name: "Edit" }).click();
    const editor = page.getByTestId("editor");
    await editor.fill((await editor.inputValue()).replace("## Troubleshooting", "## Troubleshooting\n\nEdited in the browser."));
    await capture(page, "document-edit");
    await page.getByRole("button", { name: "Save as a new version" }).click();
    await page.getByText("Version 2", { exact: false }).first().waitFor();
    await page.getByRole("tab", { name: "Compare" }).click();
    await page.getByTestId("side-by-side").getByText("Edited in the browser.").waitFor();
    await capture(page, "document-diff");
    await page.getByRole("tab", { name: "Versions" }).click();
    await page.getByTestId("versions").getByText("Version 2").waitFor();
    await capture(page, "document-versions");
    await nav(page, "Documents").click();
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export zip" }).click()]);
    const zipPath = path.join(dir, "export.zip");
    await download.saveAs(zipPath);
    const zip = readFileSync(zipPath);
    check(zip.subarray(0, 2).toString() === "PK" && zip.includes(Buffer.from(".md")), "the export is not a zip of markdown files");
    // The same zip imported back changes nothing.
    await page.getByLabel("Import zip").setInputFiles(zipPath);
    await page.getByTestId("import-report").getByText(/0 created, 0 updated, [1-9]\d* unchanged, 0 skipped/).waitFor({ timeout: T });

    step = "tasks";
    log(step);
    await nav(page, "Tasks").click();
    await page.getByRole("table").getByText("faq").first().waitFor();
    await capture(page, "tasks");

    step = "codegen";
    log(step);
    await nav(page, "Codegen").click();
    await page.getByLabel("Memory collection").selectOption({ label: "demo" });
    await page.getByLabel("Tree on the server").fill(repoDir);
    await page.getByLabel("Change").fill("Say in logout's doc comment what happens to the token");
    await capture(page, "codegen");
    await page.getByRole("button", { name: "Generate" }).click();
    await page.waitForURL(/\/tasks\//);
    const codegenTask = page.url();
    await page.getByText("Waiting for approval").waitFor({ timeout: T });
    await page.getByRole("link", { name: "open the approvals inbox" }).click();
    const change = inboxItem(page, "Say in its doc comment").getByTestId("change");
    await change.getByText("Say in its doc comment that the token stops working").waitFor();
    await change.getByText("a logged-out token is refused at once").waitFor();
    await change.getByTestId("diff").getByText("+/// The session's token stops working at once.").waitFor();
    await capture(page, "approvals-codegen");
    await page.getByRole("button", { name: "Approve", exact: true }).click();
    await page.getByText("Nothing pending.").waitFor({ timeout: T });
    await page.goto(codegenTask);
    await page.getByTestId("decision").getByText("approved", { exact: false }).waitFor({ timeout: T });
    check((await page.getByText("Waiting for approval").count()) === 0, "the approved task still says it waits");
    await page.getByTestId("change").getByTestId("diff").waitFor({ timeout: T });
    await capture(page, "task-codegen");

    step = "usage";
    log(step);
    await nav(page, "Usage").click();
    await page.getByLabel("Group by").selectOption("model");
    await page.getByTestId("usage").getByText("fake-model").waitFor({ timeout: T });
    await capture(page, "usage");

    step = "settings and operations";
    log(step);
    await apiSession(base, "signup", { email: "viewer@example.com", password: "correct horse viewer", tenant_name: "Viewer's own" });
    await nav(page, "Settings").click();
    await page.getByLabel("Name").fill("ci-bot");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = await page.getByTestId("api-key-secret").innerText();
    const viaKey = await fetch(`${base}/api/v1/projects`, { headers: { "x-api-key": secret } });
    check(viaKey.ok, `the key shown once does not work: ${viaKey.status}`);
    await capture(page, "settings-keys");
    await page.getByRole("link", { name: "Members" }).click();
    await page.getByLabel("Email").fill("viewer@example.com");
    await page.getByLabel("Role", { exact: true }).selectOption("viewer");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByTestId("members").getByText("viewer@example.com", { exact: true }).waitFor();
    await capture(page, "settings-members");
    await page.getByRole("link", { name: "AI provider and budgets" }).click();
    await page.getByLabel("Daily budget (USD)").fill("5");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByText("Saved.").waitFor();
    await capture(page, "settings-ai");
    await page.getByRole("link", { name: "Tenant", exact: true }).click();
    await page.getByLabel("Name").waitFor();
    await capture(page, "settings-tenant");
    await page.getByRole("link", { name: "Webhooks" }).click();
    await page.getByLabel("Endpoint URL").fill(`${fake.url}/webhook-sink`);
    await page.getByRole("button", { name: "Create webhook" }).click();
    const whsec = await page.getByTestId("webhook-secret").innerText();
    check(whsec.startsWith("whsec_"), `the webhook secret is not shown: ${whsec}`);
    await page.getByTestId("webhooks").getByRole("button", { name: "Deliveries" }).click();
    await page.getByTestId("deliveries").waitFor();
    await capture(page, "settings-webhooks");
    await page.getByTestId("webhooks").getByRole("button", { name: "Delete" }).click();
    await page.getByText("No webhook yet.").waitFor();
    await page.getByRole("link", { name: "Chat platforms" }).click();
    await page.getByLabel("Connection name").fill("Engineering Slack");
    await page.getByLabel("Signing secret").fill("8f742231b10e8888abcd99yyyzzz85a5");
    await page.getByLabel("Bot token (xoxb-…)").fill("xoxb-e2e-token-1234");
    await page.getByLabel("Approvals channel id (optional, C…)").fill("C0APPROVALS");
    await page.getByRole("button", { name: "Connect" }).click();
    const connection = page.getByTestId("integrations").getByRole("listitem").filter({ hasText: "Engineering Slack" });
    await connection.getByText(`${base}/hooks/slack/`).waitFor();
    await connection.getByRole("button", { name: "Link my Slack account" }).click();
    const linkCommand = await connection.getByTestId("link-command").innerText();
    check(/^\/morningai link \S{16}$/.test(linkCommand), `the Slack link command is not shown: ${linkCommand}`);
    check((await page.getByLabel("Signing secret").inputValue()) === "", "the form keeps the secrets after saving");
    check(!(await page.content()).includes("xoxb-e2e-token-1234"), "a chat platform's token is shown after saving");
    await page.getByLabel("Platform").selectOption("github");
    await page.getByLabel("Connection name").fill("demo-service on GitHub");
    await page.getByLabel("Project (its tasks are filed there)").selectOption({ label: "demo-service" });
    await page.getByLabel("Webhook secret").fill("gh-e2e-webhook-secret");
    await page.getByLabel("Token (Issues; for pull requests also Contents and Pull requests: write)").fill("github_pat_e2e_1234");
    await page.getByLabel("Repository for pull requests (owner/name, optional)").fill("acme/demo-service");
    await page.getByLabel("Propose published documents as pull requests").check();
    await page.getByRole("button", { name: "Connect", exact: true }).click();
    await page.getByTestId("pull-requests").getByText("Pull requests to acme/demo-service · published documents").waitFor();
    await capture(page, "settings-platforms");
    await nav(page, "Automation").click();
    await page.getByRole("heading", { name: "Assistants and schedules" }).waitFor();
    await page.getByLabel("Name").first().fill("Careful writer");
    await page.getByLabel("Temperature").fill("0.1");
    await page.getByRole("button", { name: "Create assistant" }).click();
    await page.getByTestId("assistants").getByText("Careful writer").waitFor();
    await page.getByLabel("Cron").fill("30 9 * * 1-5");
    await page.getByLabel("Time zone").fill("UTC");
    check((await page.getByTestId("next-runs").locator("li").count()) === 5, "the cron preview does not list five runs");
    await page.getByLabel("Name").nth(1).fill("Weekday digest");
    await page.getByLabel("Input (JSON)").fill(JSON.stringify({ kind: "noop" }));
    await page.getByLabel("Task kind").fill("echo");
    await page.getByRole("button", { name: "Create schedule" }).click();
    await page.getByTestId("schedules").getByText("Weekday digest").waitFor();
    await capture(page, "automation");
    await nav(page, "Operations").click();
    await page.getByTestId("queue").waitFor();
    await capture(page, "operations");
    await nav(page, "Home").click();
    await page.getByText("of $5.00 daily budget").waitFor();

    step = "platform admin";
    log(step);
    // Platform admins are made with the CLI, beside the running server.
    cli(dir, ["user", "create", "--email", "root@example.com", "--platform-admin"], { MORNINGAI_PASSWORD: "correct horse root" });
    cli(dir, ["tenant", "create", "--name", "Operators", "--owner", "root@example.com"]);
    check((await nav(page, "Platform").count()) === 0, "a tenant's owner sees Platform");
    // A dead letter in the owner's tenant: a folder outside the index roots fails for good.
    const ownerLogin = await apiSession(base, "login", { email: "owner@example.com", password: "correct horse battery" });
    const doomed = await api(base, ownerLogin.access_token, "POST", "/api/v1/tasks", { kind: "index", input: { path: "/", collection: "outside" } });
    for (let t = Date.now(); (await api(base, ownerLogin.access_token, "GET", `/api/v1/tasks/${doomed.id}`)).status !== "failed"; ) {
      check(Date.now() - t < T, "the index task outside the roots did not fail");
      await new Promise((r) => setTimeout(r, 100));
    }
    const { context: operator, page: opage } = await signedIn("root@example.com", "correct horse root");
    await nav(opage, "Platform").click();
    const acmeRow = opage.getByTestId("tenants").getByRole("listitem").filter({ hasText: "Acme docs" });
    await acmeRow.getByText(/2 members/).waitFor();
    await acmeRow.getByRole("button", { name: "Dead letters (1)" }).click();
    await acmeRow.getByText("is not under an allowed index root", { exact: false }).waitFor();
    await capture(opage, "platform");
    await acmeRow.getByRole("button", { name: "Purge", exact: true }).click();
    await acmeRow.getByRole("button", { name: "Dead letters (0)" }).waitFor({ timeout: T });
    current = page;
    await operator.close();

    step = "a viewer of the same tenant";
    log(step);
    const { context: viewer, page: vpage } = await signedIn("viewer@example.com", "correct horse viewer");
    // Its own tenant first: none of the owner's data.
    await vpage.goto("/documents");
    await vpage.getByText("No projects yet.").or(vpage.getByText("Create project")).first().waitFor();
    provoking = true;
    await vpage.goto(docUrl);
    await vpage.getByRole("alert").first().waitFor();
    check((await vpage.locator("[data-testid=document-text]").count()) === 0, "another tenant's document was shown");
    provoking = false;
    // Then the owner's tenant, as a viewer.
    await vpage.goto("/");
    await vpage.getByLabel("Tenant").selectOption({ label: "Acme docs" });
    await vpage.getByText("viewer", { exact: true }).waitFor();
    await capture(vpage, "home-viewer");
    await vpage.goto(docUrl);
    await vpage.getByTestId("document-text").waitFor();
    check((await vpage.getByRole("tab", { name: "Edit" }).count()) === 0, "a viewer sees Edit");
    check((await vpage.getByRole("button", { name: /Publish/ }).count()) === 0, "a viewer sees Publish");
    await vpage.getByRole("tab", { name: "Versions" }).click();
    await vpage.getByTestId("versions").getByText("Version 2").waitFor();
    check((await vpage.getByRole("button", { name: "Restore" }).count()) === 0, "a viewer sees Restore");
    await vpage.goto("/ask");
    await vpage.getByText("Viewers read documents").waitFor();
    check((await nav(vpage, "Settings").count()) === 0 && (await nav(vpage, "Operations").count()) === 0, "a viewer sees admin navigation");
    await vpage.goto("/settings");
    await vpage.getByText("Settings are for the tenant's admins.").waitFor();
    await vpage.goto("/codegen");
    await vpage.getByText("needs the member role").waitFor();
    await vpage.goto("/automation");
    await vpage.getByTestId("schedules").getByText("Weekday digest").waitFor();
    check((await vpage.getByRole("button", { name: /Create|Delete/ }).count()) === 0, "a viewer sees automation write controls");
    await vpage.goto("/memory");
    await vpage.getByRole("button", { name: "demo" }).waitFor();
    check((await vpage.getByText("Add files").count()) === 0, "a viewer sees Add files");
    check((await vpage.getByLabel("New collection").count()) === 0, "a viewer sees New collection");
    // The server refuses what the page hides.
    const vToken = (await apiSession(base, "login", { email: "viewer@example.com", password: "correct horse viewer", tenant_id: ownerLogin.tenant.id })).access_token;
    const refused = await fetch(`${base}/api/v1/tasks`, { method: "POST", headers: { authorization: `Bearer ${vToken}`, "content-type": "application/json" }, body: JSON.stringify({ kind: "echo", input: {} }) });
    check(refused.status === 403, `a viewer's task was answered ${refused.status}`);
    current = page;
    await viewer.close();

    step = "restart mid-stream with a new signing key";
    log(step);
    await page.goto("/");
    await page.getByText("live", { exact: true }).waitFor();
    provoking = true;
    await stopServer(server);
    await page.getByText("reconnecting…").waitFor({ timeout: T });
    server = await startServer(dir, port, "e2e-signing-key-two-0123456789abcdef");
    const fresh = await apiSession(base, "login", { email: "owner@example.com", password: "correct horse battery" });
    const created = [];
    for (let i = 0; i < 3; i++) created.push((await api(base, fresh.access_token, "POST", "/api/v1/tasks", { kind: "echo", input: { n: i } })).id);
    // The page's old access token no longer verifies: it refreshes through the cookie,
    // reconnects with Last-Event-ID, and shows every event of the new tasks once.
    await page.getByText("live", { exact: true }).waitFor({ timeout: T });
    for (const id of created) {
      await page.waitForFunction((id) => [...document.querySelectorAll("[data-testid=feed] a")].some((a) => a.getAttribute("href") === `/tasks/${id}`), id, { timeout: T });
    }
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid=feed] li").length >= n, created.length * 3, { timeout: T });
    const feed = await page.getByTestId("feed").innerText();
    check(feed.split("succeeded").length - 1 >= created.length, `feed after restart: ${feed}`);
    provoking = false;
    await nav(page, "Tasks").click();
    await page.getByRole("table").getByText("echo").first().waitFor();

    step = "done";
    log(step);
    check(problems.length === 0, `problems during the run:\n${problems.join("\n")}`);
    check(fake.seen.some((s) => s.url === "/v1/chat/completions"), "the provider was never called");
    log(`passed; screenshots in ${path.relative(repo, shots)}`);
  } catch (e) {
    await current?.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }).catch(() => {});
    // CI keeps the log, not the screenshot: what the page said when it failed.
    const said = await current?.innerText("body").catch(() => "");
    if (said) console.error(`the page at ${current.url()} said:\n${said.slice(0, 4000)}`);
    if (problems.length) console.error(`problems so far:\n${problems.join("\n")}`);
    throw e;
  } finally {
    if (process.env.E2E_DUMP_PROVIDER) writeFileSync(process.env.E2E_DUMP_PROVIDER, JSON.stringify(fake.seen, null, 1));
    await browser.close();
    await stopServer(server).catch(() => {});
    fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`e2e failed: ${e.stack ?? e}`);
  process.exit(1);
});
