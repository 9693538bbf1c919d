import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTcpAddress, type SettingReader, serverLaunch, serverOptions, SettingsError } from "../src/settings";

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
      },
      completion: { debounceMs: 75, maxDebounceMs: 400, maxLines: 3, contextTokens: 0, singleLineTokens: 48, multiLineTokens: 192 },
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
