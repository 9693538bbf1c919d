// End to end in a real VS Code extension host: code-server 4.100.3 (VS Code 1.100.3) driven by playwright-core and
// Debian's Chromium. Installs mimo-code.vsix, opens calc.py, waits for ghost text from the real `mimo lsp` server
// (instant backend: a fixed answer), accepts it with Tab, applies a MiMo quick fix in fix.py, and checks that
// MiMo: Toggle completions turns ghost text off and on again. Then it points the server at an OpenAI-compatible
// stand-in that answers only with an API key: without it the local nano falls back in; after "MiMo: Set API key"
// (VS Code's secret storage) the key reaches the server and the ghost text is the stand-in's answer.
// Setup once with e2e/setup-code-server.sh (`make setup` runs it); then: node e2e/run.mjs [--screenshots DIR]
// Env: MIMO_E2E_DIR (code-server install, default .cache/editors/code-server in the repository), MIMO_PYTHON (the
// interpreter with the project installed, default ../../.venv/bin/python), CHROMIUM (default /usr/bin/chromium).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const EXTENSION = resolve(HERE, "..");
const REPO = resolve(EXTENSION, "../..");
const E2E_DIR = process.env.MIMO_E2E_DIR ?? join(REPO, ".cache/editors/code-server");
const PYTHON = process.env.MIMO_PYTHON ?? join(REPO, ".venv/bin/python");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const CODE_SERVER = join(E2E_DIR, "node_modules/.bin/code-server");
const shotsIndex = process.argv.indexOf("--screenshots");
const SHOTS = shotsIndex > 0 ? resolve(process.argv[shotsIndex + 1]) : null;
const { chromium } = createRequire(join(E2E_DIR, "package.json"))("playwright-core");

const ANSWER = "return a + b";
const API_KEY = "sk-e2e-secret-7";
const KEYED_ANSWER = "return a * b";
const started = Date.now();
const log = (message) => console.error(`[e2e ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);

function freePort() {
  return new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Settings of the editor's user profile: the server from this checkout, the instant backend, no debounce. */
function userSettings(root) {
  return {
    "mimo.server.command": PYTHON,
    "mimo.server.args": ["-m", "lsp_server"],
    "mimo.engine.backend": "instant",
    "mimo.engine.instantText": ANSWER,
    "mimo.completion.debounceMs": 0,
    "mimo.completion.maxDebounceMs": 0,
    "mimo.telemetry.path": join(root, "telemetry.sqlite"),
    "editor.inlineSuggest.enabled": true,
    "editor.quickSuggestions": { other: false, comments: false, strings: false },
    "workbench.startupEditor": "none",
    "security.workspace.trust.enabled": false,
    "telemetry.telemetryLevel": "off",
    "extensions.autoCheckUpdates": false,
  };
}

/** An OpenAI-compatible engine that answers only requests carrying API_KEY (its model card says: prefix prompts). */
function keyedEngine() {
  const seen = { withKey: 0, refused: 0 };
  const server = createHttpServer((request, response) => {
    if (request.headers.authorization !== `Bearer ${API_KEY}`) {
      seen.refused += 1;
      response.writeHead(401, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: { message: "a valid API key is required", code: "invalid_api_key" } }));
      return;
    }
    seen.withKey += 1;
    request.resume();
    if (request.url.startsWith("/v1/models")) {
      response.writeHead(200, { "content-type": "application/json" });
      const card = { id: "keyed-model", object: "model", max_model_len: 4096, prompt_mode: "prefix" };
      response.end(JSON.stringify({ object: "list", data: [card] }));
    } else if (request.url.startsWith("/v1/completions")) {
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const [text, finish] of [[KEYED_ANSWER, null], ["", "stop"]]) {
        response.write(`data: ${JSON.stringify({ choices: [{ index: 0, text, finish_reason: finish }] })}\n\n`);
      }
      response.end("data: [DONE]\n\n");
    } else {
      response.writeHead(404).end();
    }
  });
  return new Promise((done) =>
    server.listen(0, "127.0.0.1", () => done({ server, seen, url: `http://127.0.0.1:${server.address().port}` })),
  );
}

function makeWorkspace(root) {
  const folder = join(root, "project");
  mkdirSync(folder);
  writeFileSync(join(folder, "calc.py"), "def add(a, b):\n    \n");
  writeFileSync(join(folder, "fix.py"), "def add(a, b):\n    return a +\n");
  writeFileSync(join(folder, "toggle.py"), "def add(a, b):\n    \n");
  writeFileSync(join(folder, "keyed.py"), "def mul(a, b):\n    \n");
  const user = join(root, "user-data", "User");
  mkdirSync(user, { recursive: true });
  writeFileSync(join(user, "settings.json"), JSON.stringify(userSettings(root)));
  return folder;
}

function codeServerArgs(root) {
  writeFileSync(join(root, "config.yaml"), "auth: none\ncert: false\n");
  return [
    "--config", join(root, "config.yaml"),
    "--user-data-dir", join(root, "user-data"),
    "--extensions-dir", join(root, "extensions"),
    "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
  ];
}

async function waitForHttp(url, child, timeoutMs = 120000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`code-server did not answer at ${url}`);
}

/** Starts code-server; retried because its parent/child handshake gives up after 10 s on a loaded machine. */
async function startCodeServer(args, folder, attempts = 3) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const server = spawn(CODE_SERVER, [...args, "--bind-addr", `127.0.0.1:${port}`, folder], { stdio: "inherit" });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, server);
      return { server, port };
    } catch (error) {
      server.kill("SIGTERM");
      if (attempt >= attempts) throw error;
      log(`code-server did not start (${error.message}); trying again`);
    }
  }
}

const editorText = (page) =>
  page.locator(".editor-instance .view-lines").first().innerText().then((text) => text.replace(/\u00a0/g, " "));

async function runCommand(page, title) {
  await page.keyboard.press("F1");
  await page.keyboard.type(title);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor({ timeout: 60000 });
  await page.keyboard.press("Enter");
}

async function openFile(page, name) {
  await page.keyboard.press("Control+P");
  await page.keyboard.type(name);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first().waitFor({ timeout: 60000 });
  await page.keyboard.press("Enter");
  await page.locator(`.tab.active:has-text("${name}")`).waitFor({ timeout: 60000 });
  await page.locator(".editor-instance .view-lines").first().click();
}

async function goTo(page, line) {
  await page.keyboard.press("Control+G");
  await page.keyboard.type(String(line));
  await page.keyboard.press("Enter");
  await page.keyboard.press("End");
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, name) });
}

async function ghostTextAccepted(page) {
  await openFile(page, "calc.py");
  await page.locator(".statusbar-item", { hasText: "MiMo" }).first().waitFor({ timeout: 60000 });
  await goTo(page, 2);
  await runCommand(page, "MiMo: Trigger completion");
  const ghost = page.locator(".ghost-text-decoration, .ghost-text");
  await ghost.first().waitFor({ timeout: 60000 });
  const shown = (await ghost.allInnerTexts()).join("").replace(/\u00a0/g, " ");
  log(`ghost text shown: ${JSON.stringify(shown)}`);
  if (!shown.includes(ANSWER)) throw new Error(`ghost text ${JSON.stringify(shown)} is not the server's answer`);
  await shot(page, "vscode-ghost-text.png");
  await page.keyboard.press("Tab");
  await page.waitForFunction(() => !document.querySelector(".ghost-text-decoration"), null, { timeout: 10000 });
  const text = await editorText(page);
  if (!text.includes(`    ${ANSWER}`)) throw new Error(`Tab did not insert the completion; the editor shows:\n${text}`);
  log("Tab accepted the completion");
  const status = await page.locator(".statusbar-item", { hasText: "MiMo" }).first().innerText();
  log(`status bar: ${JSON.stringify(status)}`);
}

async function quickFixApplied(page) {
  await openFile(page, "fix.py");
  await goTo(page, 2);
  await page.locator(".squiggly-error").first().waitFor({ timeout: 60000 });
  await page.keyboard.press("Control+.");
  const action = page.locator(".action-widget .monaco-list-row", { hasText: "Fix with MiMo" }).first();
  await action.waitFor({ timeout: 60000 });
  await shot(page, "vscode-quick-fix.png");
  await page.keyboard.press("Enter"); // the MiMo fix is the focused row; a click is swallowed by the menu's overlay
  await page.waitForFunction(() => !document.querySelector(".squiggly-error"), null, { timeout: 60000 });
  const text = await editorText(page);
  if (!text.includes(ANSWER)) throw new Error(`the quick fix did not apply; the editor shows:\n${text}`);
  log("quick fix applied");
}

async function ghostTextShows(page, timeout) {
  await runCommand(page, "MiMo: Trigger completion");
  try {
    await page.locator(".ghost-text-decoration, .ghost-text").first().waitFor({ timeout });
    return true;
  } catch {
    return false;
  }
}

async function toggleSwitchesCompletionsOffAndOn(page) {
  await openFile(page, "toggle.py"); // a fresh place where the server does answer (calc.py is complete now)
  await goTo(page, 2);
  await runCommand(page, "MiMo: Toggle completions");
  await page.locator(".statusbar-item .codicon-circle-slash").waitFor({ timeout: 60000 });
  if (await ghostTextShows(page, 4000)) throw new Error("ghost text appeared with completions toggled off");
  await page.keyboard.press("Escape");
  await runCommand(page, "MiMo: Toggle completions");
  await page.locator(".statusbar-item .codicon-sparkle").waitFor({ timeout: 60000 });
  if (!(await ghostTextShows(page, 30000))) throw new Error("no ghost text after toggling completions back on");
  await page.keyboard.press("Escape");
  log("toggle turned completions off and on");
}

const statusBarText = (page) => page.locator(".statusbar-item", { hasText: "MiMo" }).first().innerText();

/** Triggers completions until the ghost text holds ``expected`` (the engine reloads after a settings change). */
async function ghostTextBecomes(page, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let shown = "";
  while (Date.now() < deadline) {
    await goTo(page, 2);
    if (await ghostTextShows(page, 10000)) {
      shown = (await page.locator(".ghost-text-decoration, .ghost-text").allInnerTexts()).join("").replace(/\u00a0/g, " ");
      if (shown.includes(expected)) return;
    }
    await page.keyboard.press("Escape");
  }
  await shot(page, "vscode-ghost-text-never.png");
  throw new Error(
    `the ghost text never became ${JSON.stringify(expected)} (last: ${JSON.stringify(shown)}, ` +
      `status ${JSON.stringify(await statusBarText(page))})`,
  );
}

/** Rewrites the user settings in VS Code's own settings editor (code-server does not see the file change on disk). */
async function replaceUserSettings(page, settings) {
  await runCommand(page, "Preferences: Open User Settings (JSON)");
  await page.locator('.tab.active:has-text("settings.json")').waitFor({ timeout: 60000 });
  await page.locator(".editor-instance .view-lines").first().click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(JSON.stringify(settings)); // one input: no auto-closed brackets or quotes
  await page.keyboard.press("Control+S");
  await page.keyboard.press("Control+W");
}

async function apiKeyReachesTheServer(page, root) {
  const engine = await keyedEngine();
  try {
    const settings = { ...userSettings(root), "mimo.engine.backend": "native", "mimo.engine.model": "nano" };
    settings["mimo.engine.url"] = engine.url;
    settings["mimo.engine.threads"] = 1;
    await replaceUserSettings(page, settings);
    await openFile(page, "keyed.py");
    const deadline = Date.now() + 60000; // the server reloads its engine: nano, and the keyed server in front
    while (!(await statusBarText(page)).includes("(fallback)")) {
      if (Date.now() > deadline) {
        await shot(page, "vscode-no-fallback.png");
        throw new Error(`no fallback without the key: ${await statusBarText(page)} (${engine.seen.refused} refused)`);
      }
      await goTo(page, 2);
      await ghostTextShows(page, 5000);
      await page.keyboard.press("Escape");
    }
    if (engine.seen.refused === 0) throw new Error("the keyed engine was never asked");
    log(`without a key: ${JSON.stringify(await statusBarText(page))} (${engine.seen.refused} requests refused)`);
    await runCommand(page, "MiMo: Set API key");
    await page.locator(".quick-input-box input[type=password]").waitFor({ timeout: 60000 });
    await page.keyboard.type(API_KEY);
    await page.keyboard.press("Enter");
    await page.locator(".notification-toast", { hasText: "MiMo: API key saved" }).first().waitFor({ timeout: 60000 });
    await page.locator(".editor-instance .view-lines").first().click();
    try {
      await ghostTextBecomes(page, KEYED_ANSWER, 60000);
    } finally {
      log(`keyed engine: ${JSON.stringify(engine.seen)}`);
    }
    const status = await statusBarText(page);
    if (status.includes("(fallback)") || engine.seen.withKey === 0) throw new Error(`the key did not arrive: ${status}`);
    await page.keyboard.press("Escape");
    log(`API key set: the keyed engine answered (${engine.seen.withKey} requests with the key), status ${JSON.stringify(status)}`);
  } finally {
    engine.server.close();
  }
}

async function main() {
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), "mimo-e2e-"));
  const folder = makeWorkspace(root);
  const args = codeServerArgs(root);
  execFileSync(CODE_SERVER, [...args, "--install-extension", join(EXTENSION, "mimo-code.vsix")], { stdio: "inherit" });
  const { server, port } = await startCodeServer(args, folder);
  let browser;
  try {
    log(`code-server on port ${port}`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`, { timeout: 120000 });
    await page.locator(".monaco-workbench").waitFor({ timeout: 60000 });
    log("workbench loaded");
    await ghostTextAccepted(page);
    await quickFixApplied(page);
    await toggleSwitchesCompletionsOffAndOn(page);
    await apiKeyReachesTheServer(page, root);
    log("PASS");
  } finally {
    await browser?.close();
    server.kill("SIGTERM");
  }
}

main().catch((error) => {
  log(`FAIL: ${error.stack ?? error}`);
  process.exit(1);
});
