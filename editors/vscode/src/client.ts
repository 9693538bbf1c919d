// The language client: starts `mimo lsp` over stdio or connects to a TCP server, and measures completion latency.
import * as net from "node:net";
import * as vscode from "vscode";
import {
  LanguageClient,
  type LanguageClientOptions,
  type Middleware,
  type ServerOptions,
  type StreamInfo,
  TransportKind,
} from "vscode-languageclient/node";
import { type ServerLaunch, type ServerOptionsObject, serverEnvironment } from "./settings";

export interface ClientHooks {
  isEnabled(): boolean; // completions on (MiMo: Toggle completions)
  onLatency(ms: number): void; // a completion request answered with at least one item
}

function serverOptionsFor(launch: ServerLaunch): ServerOptions {
  if (launch.kind === "stdio") {
    const options = { env: serverEnvironment(process.env) };
    return { command: launch.command, args: launch.args, transport: TransportKind.stdio, options };
  }
  return () =>
    new Promise<StreamInfo>((resolve, reject) => {
      const socket = net.connect(launch.port, launch.host);
      socket.once("connect", () => resolve({ reader: socket, writer: socket }));
      socket.once("error", (error) =>
        reject(new Error(`cannot reach the MiMo server at ${launch.host}:${launch.port}: ${error.message}`)),
      );
    });
}

async function timed<T>(hooks: ClientHooks, request: () => Promise<T>, hasItems: (result: T) => boolean): Promise<T> {
  const started = performance.now();
  const result = await request();
  if (hasItems(result)) hooks.onLatency(performance.now() - started);
  return result;
}

function middleware(hooks: ClientHooks): Middleware {
  return {
    provideInlineCompletionItems: (document, position, context, token, next) => {
      if (!hooks.isEnabled()) return null;
      return timed(hooks, async () => next(document, position, context, token), (result) => {
        const items = Array.isArray(result) ? result : result?.items;
        return (items?.length ?? 0) > 0;
      });
    },
    provideCompletionItem: (document, position, context, token, next) => {
      if (!hooks.isEnabled()) return null;
      return next(document, position, context, token);
    },
  };
}

export function createClient(launch: ServerLaunch, options: ServerOptionsObject, hooks: ClientHooks): LanguageClient {
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: options,
    outputChannel: vscode.window.createOutputChannel("MiMo", { log: true }),
    middleware: middleware(hooks),
  };
  return new LanguageClient("mimo", "MiMo", serverOptionsFor(launch), clientOptions);
}
