"""The code data pipeline: collect files, filter, dedup, scrub, FIM, pack by imports, tokenise into shards, mix."""
