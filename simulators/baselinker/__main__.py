"""Run the BaseLinker simulator on its own: `python -m simulators.baselinker`.

Prints the connector URL on one line, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from simulators.baselinker.server import BaseLinkerSimulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.baselinker", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--token", default="sim-token")
    parser.add_argument("--orders", type=int, default=0, help="orders to seed now")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--anomalies", action="store_true", help="seed anomalies")
    parser.add_argument("--live", action="store_true", help="play a live shop")
    parser.add_argument("--no-drift", action="store_true", help="canonical types")
    parser.add_argument(
        "--disorder",
        action="store_true",
        help="journal pages shuffled, some entries twice",
    )
    parser.add_argument(
        "--types",
        type=lambda text: [int(t) for t in text.split(",") if t],
        default=None,
        help="journal types to generate, comma-separated (default: all)",
    )
    parser.add_argument("--rpm", type=int, default=100, help="requests per minute")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the simulator, seed and play as asked, stop on a signal."""
    sim = BaseLinkerSimulator(
        token=args.token,
        requests_per_minute=args.rpm,
        seed=args.seed,
        drift=not args.no_drift,
        journal_disorder=args.disorder,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    url = await sim.start(args.host, args.port)
    if args.orders:
        sim.seed_scenario(
            orders=args.orders, anomalies=args.anomalies, types=args.types
        )
    print(url, flush=True)
    live = asyncio.create_task(sim.run_live(types=args.types)) if args.live else None
    await stop.wait()
    if live is not None:
        live.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live
    await sim.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
