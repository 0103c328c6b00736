// Drives a real VS Code: code-server 4.100.3 on 127.0.0.1 with only the platform .vsix installed (the server it bundles,
// no daytona-lsp on PATH, no daytona.server.* setting), in headless Chromium through playwright-core. Everything runs in
// one temporary directory; every process started is stopped by PID at the end.
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const ARTIFACTS = path.join(REPO, "test-artifacts", "vscode");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through bash scripts/test-vscode`);
  return value;
}

async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** Every live descendant of `root` (by walking /proc), children before grandchildren. */
export function descendants(root) {
  const children = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = parentOf(Number(entry));
    if (!ppid) continue; // exited meanwhile
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(entry));
  }
  const out = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift();
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

function parentOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // pid (comm) state ppid ... — comm may contain spaces and parentheses: parse after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return 0;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    const state = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\S+ \(.*\) Z/.test(state); // a zombie is dead
  } catch {
    return false;
  }
}

export async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // polling a predicate, bounded by the deadline
  }
}

/** SIGTERM the given processes, wait for them to go, SIGKILL what is left. */
export async function stopProcesses(pids) {
  const signal = (pid, sig) => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  for (const pid of pids) signal(pid, "SIGTERM");
  try {
    await waitFor(() => pids.every((pid) => !alive(pid)), 5000, "processes to exit");
  } catch {
    for (const pid of pids) if (alive(pid)) signal(pid, "SIGKILL");
    await waitFor(() => pids.every((pid) => !alive(pid)), 5000, "processes to die");
  }
}

function run(command, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(" ")} → ${code}\n${output}`))));
  });
}

export class VSCode {
  /**
   * @param {{ name?: string, settings?: object, files?: Record<string,string>, trusted?: boolean, server?: string }}
   * options `trusted: false` opens the workspace in Restricted Mode (workspace trust on, no prompt). `server: "installed"`
   * sets `daytona.server.command` to the repository's installed daytona-lsp instead of using the bundled server.
   */
  static async start(options = {}) {
    const vscode = new VSCode();
    try {
      await vscode.#start(options);
    } catch (error) {
      await vscode.stop();
      throw error;
    }
    return vscode;
  }

  e2eDir = required("DAYTONA_VSCODE_E2E_DIR");
  vsix = required("DAYTONA_VSIX");
  installedServer = required("DAYTONA_LSP_INSTALLED");
  root = fs.mkdtempSync(path.join(os.tmpdir(), "daytona-vscode-e2e-"));
  workspace = path.join(this.root, "workspace");
  codeServer = null;
  browser = null;
  page = null;
  log = "";
  shot = 0;

  get env() {
    const r = this.root;
    const env = {
      ...process.env,
      HOME: path.join(r, "home"),
      XDG_CONFIG_HOME: path.join(r, "home", ".config"),
      XDG_DATA_HOME: path.join(r, "home", ".local", "share"),
      XDG_CACHE_HOME: path.join(r, "home", ".cache"),
      XDG_RUNTIME_DIR: path.join(r, "run"),
      TMPDIR: path.join(r, "tmp"),
    };
    delete env.DAYTONA_API_KEY; // the local sandbox, never a real account
    // PATH without any daytona-lsp (an activated venv's bin): the extension must find its own server
    env.PATH = (env.PATH ?? "")
      .split(path.delimiter)
      .filter((dir) => dir && !fs.existsSync(path.join(dir, "daytona-lsp")))
      .join(path.delimiter);
    delete env.VIRTUAL_ENV;
    delete env.VSCODE_IPC_HOOK_CLI;
    return env;
  }

  async #start({ name = "vscode", settings = {}, files = {}, trusted = true, server = "bundled" }) {
    this.name = name;
    for (const dir of ["home/.config", "home/.local/share", "home/.cache", "run", "tmp", "data/User", "extensions", "workspace"]) {
      fs.mkdirSync(path.join(this.root, dir), { recursive: true, mode: 0o700 });
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(this.workspace, name)), { recursive: true });
      fs.writeFileSync(path.join(this.workspace, name), text);
    }
    this.userSettingsFile = path.join(this.root, "data", "User", "settings.json");
    fs.writeFileSync(
      this.userSettingsFile,
      JSON.stringify(
        {
          ...(server === "installed" ? { "daytona.server.command": [this.installedServer] } : {}),
          "daytona.backend": "local",
          "workbench.startupEditor": "none",
          "workbench.tips.enabled": false,
          "workbench.enableExperiments": false,
          "telemetry.telemetryLevel": "off",
          "extensions.autoCheckUpdates": false,
          "extensions.autoUpdate": false,
          "extensions.ignoreRecommendations": true,
          "security.workspace.trust.enabled": !trusted,
          "security.workspace.trust.startupPrompt": "never",
          "security.workspace.trust.untrustedFiles": "open",
          "update.mode": "none",
          "chat.disableAIFeatures": true,
          "chat.commandCenter.enabled": false,
          "files.autoSave": "off",
          "editor.minimap.enabled": false,
          "window.restoreWindows": "none",
          ...settings,
        },
        null,
        2,
      ),
    );
    const bin = path.join(this.e2eDir, "node_modules", ".bin", "code-server");
    const dirs = ["--user-data-dir", path.join(this.root, "data"), "--extensions-dir", path.join(this.root, "extensions")];
    await run(bin, [...dirs, "--install-extension", this.vsix, "--force"], { env: this.env });

    const port = await freePort();
    const config = path.join(this.root, "config.yaml");
    fs.writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
    this.codeServer = spawn(
      bin,
      [
        "--config", config, ...dirs,
        ...(trusted ? ["--disable-workspace-trust"] : []), "--disable-telemetry", "--disable-update-check",
        "--disable-getting-started-override", "--ignore-last-opened",
      ],
      { env: this.env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    const listening = new Promise((resolve, reject) => {
      const onData = (d) => {
        this.log += d;
        if (/HTTP server listening on/.test(this.log)) resolve();
      };
      this.codeServer.stdout.on("data", onData);
      this.codeServer.stderr.on("data", onData);
      this.codeServer.once("exit", (code) => reject(new Error(`code-server exited (${code}):\n${this.log}`)));
      setTimeout(() => reject(new Error(`code-server did not start in 60 s:\n${this.log}`)), 60_000).unref();
    });
    await listening;

    const require = createRequire(path.join(this.e2eDir, "package.json"));
    const { chromium } = require("playwright-core");
    this.browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      env: this.env,
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
      ],
    });
    this.page = await this.browser.newPage({ viewport: { width: 1400, height: 900 } });
    this.page.setDefaultTimeout(30_000);
    await this.page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(this.workspace)}`);
    await this.page.waitForSelector(".monaco-workbench .part.statusbar", { timeout: 60_000 });
  }

  async screenshot(name) {
    if (!this.page) return;
    this.shot += 1;
    const file = path.join(ARTIFACTS, `${this.name}-${String(this.shot).padStart(2, "0")}-${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  async closeQuickInput() {
    const widget = this.page.locator(".quick-input-widget");
    if (await widget.isVisible()) {
      await this.page.keyboard.press("Escape");
      await widget.waitFor({ state: "hidden" });
    }
  }

  /** F1, type the command's title, pick it. */
  async command(title, { expectInput = false } = {}) {
    const page = this.page;
    await this.closeQuickInput(); // (not Escape in the editor: that would clear the selection)
    await page.keyboard.press("F1");
    const input = page.locator(".quick-input-widget .quick-input-box input");
    await input.waitFor({ state: "visible" });
    await input.fill(`>${title}`);
    const row = page.locator(".quick-input-widget .monaco-list-row", { hasText: title }).first();
    await row.waitFor({ state: "visible" });
    await input.press("Enter");
    if (!expectInput) await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
  }

  /** Type into the input box a command opened (waits for its title), then Enter. */
  async answerInput(title, text) {
    const page = this.page;
    await page.locator(".quick-input-widget .quick-input-title", { hasText: title }).waitFor({ state: "visible" });
    const input = page.locator(".quick-input-widget .quick-input-box input");
    await input.fill(text);
    await input.press("Enter");
    await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
  }

  /** The live language server processes this VS Code started, with their environments. */
  /** The language servers VS Code runs: processes with the server's command line, less their own children (a
   * fork of the server that has not yet exec'd the program it starts — bubblewrap, `node --version` — shows the
   * server's command line and environment for a moment: it is not a second server). */
  serverProcesses() {
    if (!this.codeServer?.pid) return [];
    const out = [];
    const matched = new Set();
    for (const pid of descendants(this.codeServer.pid)) {
      try {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        const server = (part) => part === this.installedServer || part.endsWith("/bundled/tool/launch.py");
        if (!cmdline.some(server)) continue;
        const environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
        const env = Object.fromEntries(environ.filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
        if (alive(pid)) {
          matched.add(pid);
          out.push({ pid, env });
        }
      } catch {
        // exited meanwhile
      }
    }
    return out.filter(({ pid }) => !matched.has(parentOf(pid)));
  }

  /** The whole text of an output channel, from the log file VS Code keeps of it (the panel shows only what fits). */
  outputChannelText(name) {
    const logs = path.join(this.root, "data", "logs");
    const file = fs.existsSync(logs)
      ? fs.readdirSync(logs, { recursive: true }).find((p) => String(p).endsWith(`-${name}.log`))
      : undefined;
    return file ? fs.readFileSync(path.join(logs, file), "utf8") : "";
  }

  /** Show one output channel in the panel by picking it in "Output: Show Output Channels...". */
  async showOutputChannel(name) {
    await this.command("Output: Show Output Channels...", { expectInput: true });
    const row = this.page.locator(".quick-input-widget .monaco-list-row", { hasText: new RegExp(`^${name}$`) }).first();
    await row.waitFor({ state: "visible" });
    await row.click();
    await this.page.locator(".quick-input-widget").waitFor({ state: "hidden" });
  }

  /** Quick Open a workspace file and wait for its editor tab. */
  async openFile(name) {
    const page = this.page;
    await this.closeQuickInput();
    await page.keyboard.press("F1");
    const input = page.locator(".quick-input-widget .quick-input-box input");
    await input.waitFor({ state: "visible" });
    await input.fill(name);
    await page.locator(".quick-input-widget .monaco-list-row", { hasText: name }).first().waitFor({ state: "visible" });
    await input.press("Enter");
    await page.locator(`.tabs-container .tab.active[aria-label^="${name}"]`).waitFor({ state: "visible" });
    // Focus the text so that keyboard selection works: click the first line. (Not the middle of `.view-lines`: that
    // element is taller than the editor (the space scrolled beyond the last line, more while a newly opened file is laid
    // out), so its middle can be below the visible part; Playwright then scrolls Monaco's DOM natively to reach it, the
    // view shows the last line at the top, and the lines above it, with their squiggles, are not rendered at all.)
    const firstLine = page.locator(".editor-instance .monaco-editor .view-lines .view-line").first();
    await firstLine.waitFor({ state: "visible" });
    await firstLine.click();
  }

  /**
   * Select whole lines (1-based) in the active editor, as clicking their line numbers does (from the start of `first`
   * to the start of the line after `last`), with the keyboard: Go to Line, then Shift+Down. Keys reach the editor in
   * order; a click on a line number could be lost while Monaco re-rendered the margin, and a shift-click then extended
   * the selection from wherever the cursor was. Waits until the status bar shows the cursor at the selection's end.
   */
  async selectLines(first, last) {
    const page = this.page;
    await this.closeQuickInput();
    await page.keyboard.press("Control+G");
    const input = page.locator(".quick-input-widget .quick-input-box input");
    await input.waitFor({ state: "visible" });
    await input.fill(`:${first}`); // the Go to Line prefix (Ctrl+G opens the quick input with it)
    await input.press("Enter");
    await this.waitForText(".part.statusbar", new RegExp(`Ln ${first}, Col 1\\b`), 10_000, `the cursor on line ${first}`);
    for (let line = first; line <= last; line++) await page.keyboard.press("Shift+ArrowDown");
    await this.waitForText(
      ".part.statusbar",
      new RegExp(`Ln ${last + 1}, Col 1 \\(\\d+ selected\\)`),
      10_000,
      `lines ${first}-${last} selected`,
    );
  }

  /** Wait until the output panel's editor shows text matching `pattern`; returns that text. */
  async waitForOutput(pattern, timeoutMs = 60_000) {
    return this.waitForText(".part.panel .monaco-editor .view-lines", pattern, timeoutMs, "the output panel");
  }

  /** Wait (in the page, no sleeping) until the first element matching `selector` shows text matching `pattern`. */
  async waitForText(selector, pattern, timeoutMs = 60_000, what = selector) {
    try {
      await this.page.waitForFunction(
        ([sel, source, flags]) => {
          const el = document.querySelector(sel);
          return !!el && new RegExp(source, flags).test(el.innerText.replace(/\u00a0/g, " "));
        },
        [selector, pattern.source, pattern.flags],
        { timeout: timeoutMs },
      );
    } catch (error) {
      const shown = await this.textOf(selector);
      throw new Error(`${what} never showed ${pattern} (${error.message.split("\n")[0]}); it shows:\n${shown}`);
    }
    return this.textOf(selector);
  }

  async textOf(selector) {
    const el = this.page.locator(selector).first();
    if ((await el.count()) === 0) return "";
    return (await el.innerText()).replace(/\u00a0/g, " ");
  }

  async stop() {
    const pids = [];
    if (this.codeServer?.pid) {
      pids.push(...descendants(this.codeServer.pid), this.codeServer.pid);
    }
    try {
      await this.browser?.close();
    } catch {
      // the browser may already be gone
    }
    if (this.codeServer?.pid) {
      // Processes started after the first walk (a late extension host) are caught by a second one.
      const more = descendants(this.codeServer.pid).filter((pid) => !pids.includes(pid));
      await stopProcesses([...pids, ...more].reverse());
    }
    fs.rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
  }
}
