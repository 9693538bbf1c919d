"""`python -m lsp_server [--stdio | --tcp HOST:PORT]`: the language server without the rest of the CLI."""

from __future__ import annotations

import argparse
import logging
import sys

from lsp_server.launch import parse_tcp, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m lsp_server", description="The MiMo language server.")
    parser.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP address instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        address = parse_tcp(args.tcp) if args.tcp else None
    except ValueError as exc:
        parser.error(str(exc))
    serve(address)


if __name__ == "__main__":
    main()
