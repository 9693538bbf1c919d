"""The assistant's editor features (completion, fix-its, diagnostics, review) and the LSP edge."""

__version__ = "0.1.0"
