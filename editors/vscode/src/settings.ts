// The extension's settings (package.json "contributes.configuration") turned into plain data: how to reach the
// server, and the initializationOptions it expects (docs/lsp.md). No `vscode` import, so it is unit-tested in node.

/** Reads one setting under the "mimo" section, e.g. get("engine.model", "nano"). */
export type SettingReader = <T>(key: string, fallback: T) => T;

export type ServerLaunch =
  | { kind: "stdio"; command: string; args: string[] }
  | { kind: "tcp"; host: string; port: number };

/** The server's options object, nested by section with camelCase keys, as lsp_server/settings.py reads it. */
export interface ServerOptionsObject {
  engine: {
    model: string;
    url: string | null;
    backend: string;
    remoteModel: string | null;
    remoteFimTemplate: string;
    threads: number;
    instantText: string;
    apiKey: string | null; // the engine.url server's key; null: the server's MIMO_API_KEY
  };
  completion: {
    debounceMs: number;
    maxDebounceMs: number;
    maxLines: number;
    contextTokens: number;
    singleLineTokens: number;
    multiLineTokens: number;
    promptMode: string;
  };
  languages: Record<string, boolean>;
  diagnostics: { enabled: boolean };
  telemetry: { enabled: boolean; path: string | null };
}

export class SettingsError extends Error {}

/** "127.0.0.1:2087" → host and port; anything else is a SettingsError that says what to write. */
export function parseTcpAddress(value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(":");
  const host = colon > 0 ? value.slice(0, colon) : "";
  const portText = value.slice(colon + 1);
  const port = Number(portText);
  if (!host || !/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new SettingsError(`mimo.server.tcp wants HOST:PORT, e.g. 127.0.0.1:2087 (got "${value}")`);
  }
  return { host, port };
}

export function serverLaunch(get: SettingReader): ServerLaunch {
  const tcp = get<string | null>("server.tcp", null);
  if (tcp) {
    return { kind: "tcp", ...parseTcpAddress(tcp.trim()) };
  }
  const command = get("server.command", "mimo").trim();
  if (!command) {
    throw new SettingsError('mimo.server.command is empty: set it to the program that runs the server, e.g. "mimo"');
  }
  const args = get<unknown>("server.args", ["lsp"]);
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === "string")) {
    throw new SettingsError('mimo.server.args must be a list of strings, e.g. ["lsp"]');
  }
  return { kind: "stdio", command, args };
}

function emptyToNull(value: string | null): string | null {
  return value && value.trim() ? value : null;
}

/** Where the API key is kept in VS Code's SecretStorage (the "MiMo: Set API key" command writes it). */
export const API_KEY_SECRET = "mimo.engine.apiKey";

/** What the extension knows outside the settings: the API key from SecretStorage, if one is stored. */
export interface Secrets {
  apiKey?: string | null;
}

/** The key to send: the stored secret, else the `mimo.engine.apiKey` setting, else null (the server then reads
 * MIMO_API_KEY from its own environment, which a server started over stdio inherits from VS Code). */
export function apiKey(get: SettingReader, secrets: Secrets): string | null {
  return keyText(secrets.apiKey) ?? keyText(get<unknown>("engine.apiKey", null));
}

function keyText(value: unknown): string | null {
  return typeof value === "string" && value.trim() ? value.trim() : null; // a key pasted with a line break
}

/** What the "MiMo: Set API key" input box's answer means: undefined is a cancel, blank removes the key. */
export function apiKeyInput(answer: string | undefined): { kind: "keep" } | { kind: "delete" } | { kind: "store"; key: string } {
  if (answer === undefined) return { kind: "keep" };
  const key = answer.trim();
  return key ? { kind: "store", key } : { kind: "delete" };
}

export function serverOptions(get: SettingReader, secrets: Secrets = {}): ServerOptionsObject {
  return {
    engine: {
      model: get("engine.model", "nano"),
      url: emptyToNull(get<string | null>("engine.url", null)),
      backend: get("engine.backend", "native"),
      remoteModel: emptyToNull(get<string | null>("engine.remoteModel", null)),
      remoteFimTemplate: get("engine.remoteFimTemplate", "qwen"),
      threads: get("engine.threads", 0),
      instantText: get("engine.instantText", "pass"),
      apiKey: apiKey(get, secrets),
    },
    completion: {
      debounceMs: get("completion.debounceMs", 75),
      maxDebounceMs: get("completion.maxDebounceMs", 400),
      maxLines: get("completion.maxLines", 12),
      contextTokens: get("completion.contextTokens", 0),
      singleLineTokens: get("completion.singleLineTokens", 48),
      multiLineTokens: get("completion.multiLineTokens", 192),
      promptMode: get("completion.promptMode", "auto"),
    },
    languages: { ...get<Record<string, boolean>>("languages", {}) },
    diagnostics: { enabled: get("diagnostics.enabled", true) },
    telemetry: {
      enabled: get("telemetry.enabled", true),
      path: emptyToNull(get<string | null>("telemetry.path", null)),
    },
  };
}

/** Settings whose change needs a new server process (the rest are sent as workspace/didChangeConfiguration). */
export const RESTART_KEYS = ["server.command", "server.args", "server.tcp"];
