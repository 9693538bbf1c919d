// The answer to `workspace/executeCommand` "mimo.review" (see docs/editors.md for the assumed shape): findings
// as LSP diagnostics and notes, read defensively because the command is served by another part of the project.

export interface LspDiagnosticLike {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  message: string;
}

export interface ReviewAnswer {
  diagnostics: LspDiagnosticLike[];
  notes: string[];
}

export const REVIEW_COMMAND = "mimo.review";

function isDiagnostic(value: unknown): value is LspDiagnosticLike {
  if (typeof value !== "object" || value === null) return false;
  const item = value as Record<string, unknown>;
  const range = item.range as Record<string, unknown> | undefined;
  const hasRange = typeof range === "object" && range !== null && "start" in range && "end" in range;
  return typeof item.message === "string" && hasRange;
}

/** null, a list of diagnostics, or {diagnostics?, notes?} → the findings and notes; malformed entries are dropped. */
export function parseReviewAnswer(result: unknown): ReviewAnswer {
  if (Array.isArray(result)) {
    return { diagnostics: result.filter(isDiagnostic), notes: [] };
  }
  if (typeof result !== "object" || result === null) {
    return { diagnostics: [], notes: [] };
  }
  const raw = result as Record<string, unknown>;
  const diagnostics = Array.isArray(raw.diagnostics) ? raw.diagnostics.filter(isDiagnostic) : [];
  const notes = Array.isArray(raw.notes) ? raw.notes.filter((note): note is string => typeof note === "string") : [];
  return { diagnostics, notes };
}

/** The one line shown after a review. */
export function reviewSummary(answer: ReviewAnswer, fileName: string): string {
  const count = answer.diagnostics.length;
  const findings = count === 0 ? "no findings" : `${count} finding${count === 1 ? "" : "s"} in the Problems panel`;
  const notes = answer.notes.length ? ` (${answer.notes.join("; ")})` : "";
  return `MiMo review of ${fileName}: ${findings}${notes}`;
}
