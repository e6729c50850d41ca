"""``gated serve``: trained runs on a live local page (type a text, watch every gate) and a JSON API.

This module only parses the command line; starlette and uvicorn are imported
inside ``run``, so ``gated --help`` stays quick and works without them. The
runs served are found and loaded by ``catalog.py``; the app is ``app.py``, its
workers and bounded queue ``queue.py``; what a reading computes is
``analysis.py`` and what it sends ``payload.py``; the match search
``matches.py``; generation ``generate.py``; the page itself ``static/``.
"""

from __future__ import annotations

import os
from pathlib import Path

LOOPBACK = "127.0.0.1"


def add_arguments(parser) -> None:
    """Add this command's arguments to its argparse sub-parser (keep this module's imports light)."""
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN",
                        help="run folders of 'gated train sentiment' or 'charlm', or folders of runs "
                        "(default: the tour's models in tour/models)")
    parser.add_argument("--host", default=LOOPBACK,
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--lang", choices=("en", "de"), default="en", help="language of the page (default en)")
    parser.add_argument("--workers", type=int, default=None,
                        help="requests worked on at once, one thread each (default: the number of cores)")
    parser.add_argument("--queue", type=int, default=256,
                        help="requests that may wait for a worker; past that they get 503 (default 256)")


def run(args) -> int:
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be 1 to 65535, got {args.port}")
    workers = args.workers or min(os.cpu_count() or 1, 8)
    if workers < 1 or args.queue < 1:
        raise ValueError("--workers and --queue must be at least 1")
    try:
        import uvicorn

        from .app import create_app
    except ImportError as error:
        raise ImportError(f"gated serve needs starlette and uvicorn: pip install 'gated[serve]' ({error})") from None
    import torch

    from .catalog import load_all

    torch.set_num_threads(1)  # one thread per worker: workers run side by side instead of fighting over cores
    served = load_all(args.runs)
    app = create_app(served, lang=args.lang, workers=workers, waiting=args.queue)
    if args.host != LOOPBACK:
        print(f"warning: listening on {args.host}: anyone who can reach this machine on port {args.port} "
              "can use this server and the models it serves")
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {', '.join(served)}; open http://{shown}:{args.port}/  (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
