"""`mimo serve`: an OpenAI-compatible HTTP server over any Engine (protocol, serving, app, metrics, cli)."""
