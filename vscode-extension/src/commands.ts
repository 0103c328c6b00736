// The palette commands. Each is a few lines: the work happens in the client and the server.
import * as vscode from "vscode";
import { DaytonaClient } from "./client";
import { argsKey, splitArgs } from "./logic/args";
import { errorText } from "./logic/serverCommand";
import { COMMAND_RESET, COMMAND_RESTART_SESSION, Range, RunResult, runArguments } from "./logic/wire";
import { RunOutputChannel } from "./output";
import { ApiKeyStore, validateApiKey } from "./secrets";

function lspRange(selection: vscode.Selection): Range {
  return {
    start: { line: selection.start.line, character: selection.start.character },
    end: { line: selection.end.line, character: selection.end.character },
  };
}

function activeEditor(): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showWarningMessage("Daytona: open a file to run it in a sandbox.");
  }
  return editor;
}

export function registerCommands(
  client: DaytonaClient,
  output: RunOutputChannel,
  keys: ApiKeyStore,
  state: vscode.Memento,
): vscode.Disposable[] {
  const run = async (
    editor: vscode.TextEditor,
    selection?: vscode.Selection,
    programArgs?: string[],
  ): Promise<RunResult | undefined> => {
    const document = editor.document;
    const args = runArguments(document.uri.toString(), document.languageId, selection ? lspRange(selection) : undefined);
    if (programArgs) args.args = programArgs;
    if (vscode.workspace.isTrusted) output.reveal();
    return client.runWithProgress(args);
  };

  /** Ask for the program's arguments (the file's last ones offered again); undefined when the box was dismissed. */
  const askArgs = async (uri: string): Promise<string[] | undefined> => {
    const key = argsKey(uri);
    const line = await vscode.window.showInputBox({
      title: "Daytona: Run File with Arguments",
      prompt: "The program's arguments, split as a shell would ('…' and \"…\" quote; nothing is expanded)",
      value: state.get<string>(key, ""),
      ignoreFocusOut: true,
      validateInput: (text) => {
        try {
          splitArgs(text);
          return undefined;
        } catch (error) {
          return `Not valid: ${errorText(error)}`;
        }
      },
    });
    if (line === undefined) return undefined;
    await state.update(key, line);
    return splitArgs(line);
  };

  return [
    vscode.commands.registerCommand("daytona.runFile", async (uri?: vscode.Uri) => {
      let editor = activeEditor();
      if (uri instanceof vscode.Uri && editor?.document.uri.toString() !== uri.toString()) {
        editor = await vscode.window.showTextDocument(uri, { preserveFocus: true });
      }
      return editor ? run(editor) : undefined;
    }),
    vscode.commands.registerCommand("daytona.runFileWithArguments", async () => {
      const editor = activeEditor();
      if (!editor) return undefined;
      const programArgs = await askArgs(editor.document.uri.toString());
      return programArgs ? run(editor, undefined, programArgs) : undefined;
    }),
    vscode.commands.registerCommand("daytona.runSelection", async () => {
      const editor = activeEditor();
      if (!editor) return undefined;
      if (editor.selection.isEmpty) {
        void vscode.window.showWarningMessage("Daytona: select the code to run first (or use “Run File in Sandbox”).");
        return undefined;
      }
      return run(editor, editor.selection);
    }),
    vscode.commands.registerCommand("daytona.cancelRun", async () => {
      try {
        await client.cancel();
      } catch (error) {
        void vscode.window.showErrorMessage(`Daytona: could not cancel: ${errorText(error)}`);
      }
    }),
    vscode.commands.registerCommand("daytona.reset", async () => {
      try {
        await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: "Daytona: resetting the sandbox" },
          () => client.execute(COMMAND_RESET),
        );
        void vscode.window.showInformationMessage("Daytona: the sandbox was reset; the next run starts a fresh one.");
      } catch (error) {
        void vscode.window.showErrorMessage(`Daytona: could not reset the sandbox: ${errorText(error)}`);
      }
    }),
    vscode.commands.registerCommand("daytona.restartDocumentSession", async () => {
      // the active document's session (its cells' state); without an editor: every session
      const uri = vscode.window.activeTextEditor?.document.uri.toString();
      try {
        const result = await client.execute<{ restarted: number }>(COMMAND_RESTART_SESSION, uri ? [{ uri }] : []);
        const n = result?.restarted ?? 0;
        const what = uri ? vscode.workspace.asRelativePath(vscode.Uri.parse(uri), false) : "every document";
        output.channel.appendLine(`↻ session restarted: ${what} (${n} ended); the next cell starts with a fresh state`);
        await client.refreshSandboxInfo();
        return result;
      } catch (error) {
        void vscode.window.showErrorMessage(`Daytona: could not restart the session: ${errorText(error)}`);
        return undefined;
      }
    }),
    vscode.commands.registerCommand("daytona.showOutput", (which?: string) =>
      which === "server" ? client.showLog() : output.channel.show(false),
    ),
    vscode.commands.registerCommand("daytona.setApiKey", async () => {
      const key = await vscode.window.showInputBox({
        title: "Daytona API Key",
        prompt: "Stored in VS Code's secret storage (never in settings.json); runs then go to Daytona sandboxes.",
        password: true,
        ignoreFocusOut: true,
        validateInput: validateApiKey,
      });
      if (key === undefined) return;
      await keys.set(key.trim());
      await client.restart();
      void vscode.window.showInformationMessage("Daytona: API key saved; the server restarted with it.");
    }),
    vscode.commands.registerCommand("daytona.clearApiKey", async () => {
      await keys.clear();
      await client.restart();
      const stillInEnv = Boolean(process.env.DAYTONA_API_KEY);
      void vscode.window.showInformationMessage(
        stillInEnv
          ? "Daytona: API key removed from secret storage; DAYTONA_API_KEY is still set in VS Code's environment."
          : "Daytona: API key removed; runs use the local sandbox unless daytona.backend says otherwise.",
      );
    }),
    vscode.commands.registerCommand("daytona.restartServer", () => client.restart()),
  ];
}
