// MiMo Code for VS Code: wires the language client (client.ts), the status bar (statusBar.ts) and the commands.
// Completions, quick fixes and review all come from the `mimo lsp` server; the extension holds no model logic.
import * as vscode from "vscode";
import {
  type Diagnostic,
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  type ExecuteCommandParams,
  type LanguageClient,
  State,
} from "vscode-languageclient/node";
import { createClient } from "./client";
import { parseReviewAnswer, REVIEW_COMMAND, reviewSummary } from "./review";
import {
  API_KEY_ENV,
  API_KEY_SECRET,
  apiKeyInput,
  RESTART_KEYS,
  type ServerLaunch,
  type ServerOptionsObject,
  type SettingReader,
  serverLaunch,
  serverOptions,
  SettingsError,
  userValue,
} from "./settings";
import { applyNotification } from "./status";
import { StatusBar } from "./statusBar";

const SECTION = "mimo";
let client: LanguageClient | undefined;
let statusBar: StatusBar;
let reviewDiagnostics: vscode.DiagnosticCollection;
let secrets: vscode.SecretStorage; // the API key lives here, never in settings.json
// Completions on or off: kept here so a toggle takes effect at once; the `mimo.enable` setting persists it.
let enabled = true;

function reader(): SettingReader {
  const config = vscode.workspace.getConfiguration(SECTION);
  return <T>(key: string, fallback: T): T => config.get<T>(key, fallback);
}

/** The server's options: the settings, with the API key (SecretStorage, the setting or MIMO_API_KEY) when the
 * engine URL is the user's own. */
async function currentOptions(): Promise<ServerOptionsObject> {
  const url = vscode.workspace.getConfiguration(SECTION).inspect<string | null>("engine.url");
  return serverOptions(reader(), {
    apiKey: await secrets.get(API_KEY_SECRET),
    environmentKey: process.env[API_KEY_ENV],
    userEngineUrl: userValue(url, null),
  });
}

async function sendOptions(): Promise<void> {
  if (client?.isRunning()) {
    await client.sendNotification(DidChangeConfigurationNotification.type, { settings: await currentOptions() });
  }
}

/** "MiMo: Set API key": a password box; the key goes to SecretStorage (blank removes it), then to the server. */
async function setApiKey(): Promise<void> {
  const answer = await vscode.window.showInputBox({
    title: "MiMo: Set API key",
    prompt: "The API key of the mimo.engine.url server (mimo serve --api-key). Kept in VS Code's secret storage. " +
      "Leave empty to remove it.",
    password: true,
    ignoreFocusOut: true,
  });
  const input = apiKeyInput(answer);
  if (input.kind === "store") await secrets.store(API_KEY_SECRET, input.key);
  if (input.kind === "delete") await secrets.delete(API_KEY_SECRET);
  if (input.kind !== "keep") {
    void vscode.window.showInformationMessage(`MiMo: API key ${input.kind === "store" ? "saved" : "removed"}`);
  }
}

function enabledSetting(): boolean {
  return vscode.workspace.getConfiguration(SECTION).get("enable", true);
}

function setEnabled(value: boolean): void {
  enabled = value;
  statusBar.update((s) => ({ ...s, enabled }));
}

/** Where the server is, or null after telling the person which setting is wrong. */
function launchOrReport(): ServerLaunch | null {
  try {
    return serverLaunch(reader());
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    statusBar.update((s) => ({ ...s, engine: "error", message: error.message }));
    void vscode.window.showErrorMessage(error.message);
    return null;
  }
}

async function startClient(): Promise<void> {
  const launch = launchOrReport();
  if (!launch) return;
  const hooks = {
    isEnabled: () => enabled,
    onLatency: (ms: number) => statusBar.update((s) => ({ ...s, lastLatencyMs: ms })),
  };
  client = createClient(launch, await currentOptions(), hooks);
  client.onNotification("mimo/status", (params: unknown) => statusBar.update((s) => applyNotification(s, params)));
  client.onDidChangeState(({ newState }) => {
    if (newState === State.Stopped) statusBar.update((s) => ({ ...s, engine: "stopped" }));
  });
  try {
    await client.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    statusBar.update((s) => ({ ...s, engine: "error", message }));
    void vscode.window.showErrorMessage(`MiMo: the language server did not start: ${message}`);
  }
}

async function stopClient(): Promise<void> {
  const running = client;
  client = undefined;
  if (running?.isRunning()) await running.stop();
}

async function toggle(): Promise<void> {
  setEnabled(!enabled);
  await vscode.workspace.getConfiguration(SECTION).update("enable", enabled, vscode.ConfigurationTarget.Global);
}

async function reviewChanges(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const running = client;
  if (!editor || !running?.isRunning()) {
    void vscode.window.showWarningMessage("MiMo: open a file with the server running to review its changes");
    return;
  }
  const uri = editor.document.uri;
  const params: ExecuteCommandParams = { command: REVIEW_COMMAND, arguments: [uri.toString()] };
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "MiMo: reviewing changes…" },
    () => running.sendRequest(ExecuteCommandRequest.type, params),
  );
  const answer = parseReviewAnswer(result);
  const diagnostics = await running.protocol2CodeConverter.asDiagnostics(answer.diagnostics as Diagnostic[]);
  for (const diagnostic of diagnostics) diagnostic.source ??= "mimo review";
  reviewDiagnostics.set(uri, diagnostics);
  await vscode.commands.executeCommand("workbench.actions.view.problems");
  void vscode.window.showInformationMessage(reviewSummary(answer, vscode.workspace.asRelativePath(uri)));
}

function showError(action: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await action();
    } catch (error) {
      void vscode.window.showErrorMessage(`MiMo: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
}

async function onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
  if (!event.affectsConfiguration(SECTION)) return;
  if (event.affectsConfiguration(`${SECTION}.enable`)) setEnabled(enabledSetting());
  if (RESTART_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
    await stopClient();
    await startClient();
  } else {
    await sendOptions();
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  enabled = enabledSetting();
  statusBar = new StatusBar(enabled);
  reviewDiagnostics = vscode.languages.createDiagnosticCollection("mimo review");
  secrets = context.secrets;
  context.subscriptions.push(
    statusBar,
    reviewDiagnostics,
    vscode.commands.registerCommand("mimo.toggle", showError(toggle)),
    vscode.commands.registerCommand("mimo.triggerCompletion", () =>
      vscode.commands.executeCommand("editor.action.inlineSuggest.trigger"),
    ),
    vscode.commands.registerCommand("mimo.reviewChanges", showError(reviewChanges)),
    vscode.commands.registerCommand("mimo.showStatus", () =>
      vscode.window.showInformationMessage(statusBarSummary()),
    ),
    vscode.commands.registerCommand("mimo.restartServer", showError(async () => {
      await stopClient();
      await startClient();
    })),
    vscode.commands.registerCommand("mimo.setApiKey", showError(setApiKey)),
    vscode.workspace.onDidChangeConfiguration((event) => void onConfigurationChanged(event)),
    secrets.onDidChange((event) => {
      if (event.key === API_KEY_SECRET) void sendOptions();
    }),
  );
  await startClient();
}

function statusBarSummary(): string {
  const s = statusBar.current;
  return `MiMo: completions ${enabled ? "on" : "off"}, engine ${s.engine}, model ${s.model ?? "unknown"}` +
    (s.message ? `, ${s.message}` : "");
}

export function deactivate(): Promise<void> {
  return stopClient();
}
