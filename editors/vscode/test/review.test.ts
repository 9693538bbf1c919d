import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseReviewAnswer, reviewSummary } from "../src/review";

const finding = {
  range: { start: { line: 2, character: 0 }, end: { line: 2, character: 9 } },
  message: "possible None dereference",
  severity: 2,
};

describe("parseReviewAnswer", () => {
  it("reads {diagnostics, notes}", () => {
    const answer = parseReviewAnswer({ diagnostics: [finding], notes: ["only the checks ran"], model: null });
    assert.deepEqual(answer, { diagnostics: [finding], notes: ["only the checks ran"] });
  });

  it("reads a bare list of diagnostics", () => {
    assert.deepEqual(parseReviewAnswer([finding]).diagnostics, [finding]);
  });

  it("drops malformed entries and treats null as no findings", () => {
    const answer = parseReviewAnswer({ diagnostics: [finding, { message: "no range" }, 3], notes: ["ok", 5] });
    assert.deepEqual(answer, { diagnostics: [finding], notes: ["ok"] });
    assert.deepEqual(parseReviewAnswer(null), { diagnostics: [], notes: [] });
  });
});

describe("reviewSummary", () => {
  it("counts findings and appends the notes", () => {
    assert.equal(reviewSummary({ diagnostics: [finding, finding], notes: [] }, "calc.py"), "MiMo review of calc.py: 2 findings in the Problems panel");
    assert.equal(
      reviewSummary({ diagnostics: [], notes: ["no uncommitted changes in this file"] }, "calc.py"),
      "MiMo review of calc.py: no findings (no uncommitted changes in this file)",
    );
  });
});
