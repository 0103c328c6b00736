// Wires the parts together; no logic of its own.
import * as vscode from "vscode";
import { DaytonaClient } from "./client";
import { findBundle } from "./discovery";
import { registerCommands } from "./commands";
import { createLogChannel, RunOutputChannel } from "./output";
import { RESTART_SETTINGS } from "./logic/settings";
import { ApiKeyStore } from "./secrets";
import { StatusBar } from "./status";

let client: DaytonaClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const keys = new ApiKeyStore(context.secrets);
  const secrets = () => [keys.known];
  const output = new RunOutputChannel(secrets);
  const log = createLogChannel(secrets);
  const status = new StatusBar();
  client = new DaytonaClient(output, log, status, keys, findBundle(context));
  const c = client;

  context.subscriptions.push(
    keys,
    output,
    log,
    status,
    ...registerCommands(c, output, keys, context.workspaceState),
    keys.onDidChange(() => void c.restart()),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void c.restart()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (RESTART_SETTINGS.some((section) => e.affectsConfiguration(section))) void c.restart();
    }),
  );
  await keys.get();
  void c.restart();
}

export async function deactivate(): Promise<void> {
  await client?.dispose();
  client = undefined;
}
