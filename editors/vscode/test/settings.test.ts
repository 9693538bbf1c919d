import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  API_KEY_ENV,
  apiKeyInput,
  parseTcpAddress,
  RESTART_KEYS,
  type SettingReader,
  serverLaunch,
  serverOptions,
  serverEnvironment,
  SettingsError,
  userValue,
} from "../src/settings";

/** A reader over a flat map of dotted keys, as VS Code's WorkspaceConfiguration.get behaves. */
function readerOf(values: Record<string, unknown>): SettingReader {
  return <T>(key: string, fallback: T): T => (key in values ? (values[key] as T) : fallback);
}

describe("serverLaunch", () => {
  it("starts `mimo lsp` over stdio by default", () => {
    assert.deepEqual(serverLaunch(readerOf({})), { kind: "stdio", command: "mimo", args: ["lsp"] });
  });

  it("uses the configured command and arguments", () => {
    const launch = serverLaunch(readerOf({ "server.command": "/opt/py/bin/python", "server.args": ["-m", "lsp_server"] }));
    assert.deepEqual(launch, { kind: "stdio", command: "/opt/py/bin/python", args: ["-m", "lsp_server"] });
  });

  it("connects over TCP when an address is set", () => {
    assert.deepEqual(serverLaunch(readerOf({ "server.tcp": " 127.0.0.1:2087 " })), { kind: "tcp", host: "127.0.0.1", port: 2087 });
  });

  it("rejects an empty command and non-string arguments with the setting's name", () => {
    assert.throws(() => serverLaunch(readerOf({ "server.command": "  " })), /mimo\.server\.command is empty/);
    assert.throws(() => serverLaunch(readerOf({ "server.args": ["lsp", 3] })), /mimo\.server\.args must be a list of strings/);
  });
});

describe("parseTcpAddress", () => {
  it("splits at the last colon so IPv6 hosts work", () => {
    assert.deepEqual(parseTcpAddress("::1:9000"), { host: "::1", port: 9000 });
  });

  for (const bad of ["localhost", ":2087", "host:", "host:0", "host:70000", "host:80x"]) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseTcpAddress(bad), (error: unknown) => error instanceof SettingsError && /HOST:PORT/.test(error.message));
    });
  }
});

describe("serverOptions", () => {
  it("nests the settings by section with the server's camelCase names", () => {
    const options = serverOptions(
      readerOf({
        "engine.model": "/models/nano",
        "engine.url": "http://127.0.0.1:8000/v1",
        "completion.maxLines": 3,
        languages: { markdown: false },
        "telemetry.enabled": false,
      }),
    );
    assert.deepEqual(options, {
      engine: {
        model: "/models/nano",
        url: "http://127.0.0.1:8000/v1",
        backend: "native",
        remoteModel: null,
        remoteFimTemplate: "qwen",
        threads: 0,
        instantText: "pass",
        apiKey: null,
      },
      completion: {
        debounceMs: 75, maxDebounceMs: 400, maxLines: 3, contextTokens: 0, singleLineTokens: 48, multiLineTokens: 192,
        promptMode: "auto",
      },
      languages: { markdown: false },
      diagnostics: { enabled: true },
      telemetry: { enabled: false, path: null },
    });
  });

  it("sends an empty URL or path as null, meaning the server's default", () => {
    const options = serverOptions(readerOf({ "engine.url": "  ", "telemetry.path": "" }));
    assert.equal(options.engine.url, null);
    assert.equal(options.telemetry.path, null);
  });
});

describe("the API key and the prompt mode", () => {
  it("sends the key from secret storage before the setting, and null when neither has one", () => {
    const setting = readerOf({ "engine.apiKey": "sk-from-settings" });
    assert.equal(serverOptions(setting, { apiKey: "sk-secret" }).engine.apiKey, "sk-secret");
    assert.equal(serverOptions(setting, { apiKey: undefined }).engine.apiKey, "sk-from-settings");
    assert.equal(serverOptions(setting).engine.apiKey, "sk-from-settings");
    assert.equal(serverOptions(readerOf({})).engine.apiKey, null); // the server reads MIMO_API_KEY then
  });

  it("trims a pasted key and ignores a blank or non-string one", () => {
    assert.equal(serverOptions(readerOf({}), { apiKey: " sk-1\n" }).engine.apiKey, "sk-1");
    assert.equal(serverOptions(readerOf({ "engine.apiKey": "  " }), { apiKey: "" }).engine.apiKey, null);
    assert.equal(serverOptions(readerOf({ "engine.apiKey": 42 })).engine.apiKey, null);
  });

  it("reads the set-key command's answer: cancel keeps, blank removes, text stores", () => {
    assert.deepEqual(apiKeyInput(undefined), { kind: "keep" });
    assert.deepEqual(apiKeyInput("  "), { kind: "delete" });
    assert.deepEqual(apiKeyInput(" sk-2 "), { kind: "store", key: "sk-2" });
  });

  it("passes the prompt mode", () => {
    assert.equal(serverOptions(readerOf({ "completion.promptMode": "chat" })).completion.promptMode, "chat");
  });
});

describe("the API key goes only to the user's own engine URL", () => {
  const userUrl = "http://127.0.0.1:8000/v1";
  const secrets = { apiKey: "sk-secret", environmentKey: "sk-env", userEngineUrl: userUrl };

  it("sends the key to the URL of the user settings", () => {
    assert.equal(serverOptions(readerOf({ "engine.url": userUrl }), secrets).engine.apiKey, "sk-secret");
  });

  it("sends no key at all to a URL the workspace set, whatever holds the key", () => {
    const workspace = readerOf({ "engine.url": "https://collector.example/v1", "engine.apiKey": "sk-setting" });
    for (const held of [secrets, { ...secrets, apiKey: null }, { environmentKey: "sk-env", userEngineUrl: userUrl }]) {
      const options = serverOptions(workspace, held);
      assert.equal(options.engine.apiKey, null);
      assert.equal(options.engine.url, "https://collector.example/v1"); // the URL itself still applies, keyless
    }
    // No user URL at all (the workspace's is the only one), or none said: no key either.
    assert.equal(serverOptions(workspace, { ...secrets, userEngineUrl: null }).engine.apiKey, null);
    assert.equal(serverOptions(workspace, { apiKey: "sk-secret" }).engine.apiKey, null);
  });

  it("reads MIMO_API_KEY from VS Code's environment last, and only for the user's URL", () => {
    const user = readerOf({ "engine.url": userUrl });
    assert.equal(serverOptions(user, { environmentKey: " sk-env ", userEngineUrl: userUrl }).engine.apiKey, "sk-env");
    assert.equal(serverOptions(user, { ...secrets, apiKey: undefined }).engine.apiKey, "sk-env");
  });

  it("takes the user's value from VS Code's inspection, never the workspace's", () => {
    const inspected = { defaultValue: null, globalValue: userUrl, workspaceValue: "https://collector.example/v1" };
    assert.equal(userValue<string | null>(inspected, null), userUrl);
    assert.equal(userValue<string | null>({ defaultValue: null, workspaceFolderValue: "http://x/v1" } as never, null), null);
    assert.equal(userValue<string | null>(undefined, null), null);
  });

  it("starts the server without MIMO_API_KEY in its environment (it would send it to any URL)", () => {
    const environment = serverEnvironment({ PATH: "/usr/bin", [API_KEY_ENV]: "sk-env", EMPTY: undefined });
    assert.deepEqual(environment, { PATH: "/usr/bin" });
  });
});

describe("package.json", () => {
  const manifest = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  const declared = manifest.contributes.configuration.properties as Record<string, { default: unknown; scope?: string }>;

  it("declares every setting the extension reads, with the default the code falls back to", () => {
    const read: Record<string, unknown> = {};
    const recorder: SettingReader = <T>(key: string, fallback: T): T => {
      read[key] = fallback;
      return fallback;
    };
    serverOptions(recorder);
    serverLaunch(recorder);
    for (const [key, fallback] of Object.entries(read)) {
      assert.ok(`mimo.${key}` in declared, `mimo.${key} is read but not declared in package.json`);
      assert.deepEqual(declared[`mimo.${key}`].default, fallback, `mimo.${key}'s default`);
    }
    for (const key of RESTART_KEYS) assert.ok(`mimo.${key}` in declared, key);
  });

  it("ignores an untrusted workspace's program, addresses and paths", () => {
    const untrusted = manifest.capabilities.untrustedWorkspaces;
    assert.equal(untrusted.supported, "limited");
    for (const key of ["mimo.server.command", "mimo.server.args", "mimo.server.tcp", "mimo.engine.url", "mimo.telemetry.path"]) {
      assert.ok(untrusted.restrictedConfigurations.includes(key), key);
      assert.ok(key in declared, `${key} is restricted but not declared`);
    }
  });

  it("keeps the API key setting out of workspace settings and offers the command", () => {
    assert.equal(declared["mimo.engine.apiKey"].scope, "machine");
    const commands = manifest.contributes.commands.map((command: { command: string }) => command.command);
    assert.ok(commands.includes("mimo.setApiKey"));
  });
});
