"""The `mimo` command: the edge that composes each package's own sub-commands. Nothing imports this package."""
