"""``watchfloor web``: serve the console (waitress, a production WSGI server in pure Python)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("web", help="serve the console (alerts, stories, search, triage)")
    p.add_argument(
        "--bind", default=None, help="HOST:PORT (default $WATCHFLOOR_WEB_BIND or 127.0.0.1:8080)"
    )
    p.add_argument("--threads", type=int, default=16, help="request threads (default 16)")
    p.set_defaults(func=run, needs_database="if-embedded")


def run(args: argparse.Namespace) -> int:
    import waitress

    from web.app import create_app
    from worker.runtime import runtime

    rt = runtime()
    bind = args.bind or rt.settings.web_bind
    print(f"console on http://{bind}/", file=sys.stderr, flush=True)
    waitress.serve(create_app(rt), listen=bind, threads=args.threads, ident="watchfloor")
    return 0
