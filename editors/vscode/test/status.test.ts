import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyNotification, formatLatency, INITIAL_STATUS, statusText } from "../src/status";

describe("applyNotification", () => {
  it("takes the state, model and message of a mimo/status notification", () => {
    const status = applyNotification(INITIAL_STATUS, { state: "fallback", model: "nano", message: "primary unreachable" });
    assert.equal(status.engine, "fallback");
    assert.equal(status.model, "nano");
    assert.equal(status.message, "primary unreachable");
  });

  it("clears the message once the engine is ready again", () => {
    const fallback = applyNotification(INITIAL_STATUS, { state: "fallback", model: "nano", message: "slow" });
    const ready = applyNotification(fallback, { state: "ready", model: "nano", message: null });
    assert.equal(ready.message, null);
    assert.equal(ready.engine, "ready");
  });

  it("keeps the previous values for unknown states and malformed notifications", () => {
    const ready = applyNotification(INITIAL_STATUS, { state: "ready", model: "nano" });
    assert.deepEqual(applyNotification(ready, null), ready);
    assert.equal(applyNotification(ready, { state: "exploded", model: 7 }).engine, "ready");
    assert.equal(applyNotification(ready, { state: "exploded", model: 7 }).model, "nano");
  });
});

describe("statusText", () => {
  it("shows the model, the fallback and the last latency", () => {
    const { text, tooltip } = statusText({ ...INITIAL_STATUS, engine: "fallback", model: "nano", message: "primary down", lastLatencyMs: 41.6 });
    assert.equal(text, "$(warning) MiMo nano (fallback) 42 ms");
    assert.match(tooltip, /Fallback: primary down/);
    assert.match(tooltip, /Last completion: 42 ms/);
  });

  it("says when completions are off, whatever the engine does", () => {
    const { text, tooltip } = statusText({ ...INITIAL_STATUS, enabled: false, engine: "ready", model: "nano" });
    assert.equal(text, "$(circle-slash) MiMo");
    assert.match(tooltip, /off/);
  });

  it("labels an error as an error", () => {
    assert.match(statusText({ ...INITIAL_STATUS, engine: "error", message: "no such model" }).tooltip, /Error: no such model/);
  });
});

describe("formatLatency", () => {
  it("uses milliseconds below a second and seconds above", () => {
    assert.equal(formatLatency(999.4), "999 ms");
    assert.equal(formatLatency(1530), "1.5 s");
  });
});
