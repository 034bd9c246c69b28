"""``python -m sim``: serve the marketplace simulator (and optionally start a day of traffic)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.server import DEFAULT_CATALOGUE, run_simulator
from sim.settings import SimSettings, SimSettingsError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, read settings from the environment and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m sim", description="Karya marketplace simulator")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    parser.add_argument("--orders", type=int, default=0, help="start a day of this many orders at once")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        settings = SimSettings.from_env()
    except SimSettingsError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    run_simulator(
        args.host,
        args.port,
        catalogue_path=args.catalogue,
        settings=settings,
        orders=args.orders,
        seed=args.seed,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
