"""One module per ``watchfloor`` subcommand; each exposes ``register(subparsers)``."""
