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

/** The environment variable that holds the engine's key (engine/remote.py's API_KEY_ENV). */
export const API_KEY_ENV = "MIMO_API_KEY";

/** What the extension knows outside the settings. */
export interface Secrets {
  apiKey?: string | null; // from SecretStorage, if one is stored
  environmentKey?: string | null; // MIMO_API_KEY of VS Code's own environment
  // mimo.engine.url as the user (or the machine) set it, ignoring the workspace's settings: the only URL a key
  // is sent to. A cloned repository's .vscode/settings.json could otherwise point the key at its own server.
  userEngineUrl?: string | null;
}

/** The parts of VS Code's `WorkspaceConfiguration.inspect(key)` that say what the user set. */
export interface SettingInspection<T> {
  defaultValue?: T;
  globalValue?: T;
}

/** A setting's value before any workspace or folder settings: the user's (machine settings included), else the
 * default. */
export function userValue<T>(inspection: SettingInspection<T> | undefined, fallback: T): T {
  return inspection?.globalValue ?? inspection?.defaultValue ?? fallback;
}

/** The key to send: the stored secret, else the `mimo.engine.apiKey` setting, else MIMO_API_KEY from VS Code's
 * environment; null when there is none, or when mimo.engine.url is not the one the user set (a workspace's URL
 * gets no key). The server started over stdio gets an environment without MIMO_API_KEY (serverEnvironment), so
 * null means no key at all. */
export function apiKey(get: SettingReader, secrets: Secrets): string | null {
  const url = emptyToNull(get<string | null>("engine.url", null));
  if (url !== null && url !== emptyToNull(secrets.userEngineUrl ?? null)) return null;
  return keyText(secrets.apiKey) ?? keyText(get<unknown>("engine.apiKey", null)) ?? keyText(secrets.environmentKey);
}

/** The environment of a server started over stdio: VS Code's, less MIMO_API_KEY (the extension decides where
 * the key goes, and sends it as engine.apiKey). */
export function serverEnvironment(environment: Record<string, string | undefined>): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    if (name !== API_KEY_ENV && value !== undefined) copy[name] = value;
  }
  return copy;
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
