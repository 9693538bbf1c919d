// What the status bar item shows: the engine state from the server's `mimo/status` notification, the model, the
// fallback reason and the last completion latency measured by the extension. Plain data in, text out.

export type EngineState = "starting" | "loading" | "ready" | "fallback" | "error" | "stopped";

export interface StatusState {
  enabled: boolean;
  engine: EngineState;
  model: string | null;
  message: string | null; // the fallback reason or the error
  lastLatencyMs: number | null;
}

export const INITIAL_STATUS: StatusState = {
  enabled: true,
  engine: "starting",
  model: null,
  message: null,
  lastLatencyMs: null,
};

const KNOWN_STATES: readonly string[] = ["loading", "ready", "fallback", "error"];

/** Folds a `mimo/status` notification ({state, model, message}) into the state; unknown fields are ignored. */
export function applyNotification(status: StatusState, params: unknown): StatusState {
  if (typeof params !== "object" || params === null) {
    return status;
  }
  const raw = params as Record<string, unknown>;
  const known = typeof raw.state === "string" && KNOWN_STATES.includes(raw.state);
  const engine = known ? (raw.state as EngineState) : status.engine;
  return {
    ...status,
    engine,
    model: typeof raw.model === "string" ? raw.model : status.model,
    message: typeof raw.message === "string" && raw.message ? raw.message : null,
  };
}

export function formatLatency(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const ICONS: Record<EngineState, string> = {
  starting: "$(loading~spin)",
  loading: "$(loading~spin)",
  ready: "$(sparkle)",
  fallback: "$(warning)",
  error: "$(error)",
  stopped: "$(debug-disconnect)",
};

export function statusText(status: StatusState): { text: string; tooltip: string } {
  if (!status.enabled) {
    return { text: "$(circle-slash) MiMo", tooltip: "MiMo completions are off (click to turn them on)" };
  }
  const parts = [`${ICONS[status.engine]} MiMo`];
  if (status.model) parts.push(status.model);
  if (status.engine === "fallback") parts.push("(fallback)");
  if (status.lastLatencyMs !== null) parts.push(formatLatency(status.lastLatencyMs));
  const tooltip = [
    `Engine: ${status.engine}`,
    `Model: ${status.model ?? "unknown"}`,
    status.lastLatencyMs !== null ? `Last completion: ${formatLatency(status.lastLatencyMs)}` : "No completion yet",
    status.message ? (status.engine === "error" ? `Error: ${status.message}` : `Fallback: ${status.message}`) : "",
    "Click to turn completions off",
  ].filter(Boolean);
  return { text: parts.join(" "), tooltip: tooltip.join("\n") };
}
