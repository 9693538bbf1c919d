"""`mimo review`: review of a git diff with deterministic checks and a model, reported as text, JSON, SARIF,
rdjson or GitHub annotations. diff -> context (units, chunks) -> checks + model (runner) -> findings -> report."""
