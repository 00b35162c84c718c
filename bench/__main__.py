"""python -m bench [--quick] [--only fanout,rooms,...] [--server-arg ARG ...]

The IRC scenarios (issue 13: chatroom's IRC port against ngIRCd and InspIRCd)
run only when named: --only irc,irc-idle [--irc-clients N].

Runs the scenarios against the bare baselines and the real server (when it is
in this checkout), prints the table and writes it with the JSON of every
figure to bench/results/.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from bench import plan, scenarios, servers
from bench.measure import machine_description, raise_open_files_limit
from bench.report import Progress, Row, render_table, write_results

# Enough for scenario 3's clients in the generator, and its connections in the
# server; each process gets its own copy of this limit.
WANTED_OPEN_FILES = 65_536
ORDER = (
    "fanout",
    "rooms",
    "idle",
    "storm",
    "persistence",
    "history",
    "generator",
    "timeline",
)
# Run only when --only names them: they need the C IRC servers installed.
OPT_IN = ("irc", "irc-idle")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, short windows: a smoke test (< 1 min)",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated scenarios among {', '.join(ORDER + OPT_IN)}",
    )
    parser.add_argument(
        "--no-chatroom", action="store_true", help="measure the baselines only"
    )
    parser.add_argument(
        "--no-coalescing",
        action="store_true",
        help="skip the coalescing bare baseline in scenarios 1 and 2",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra argument for the real server (repeatable), "
        "e.g. to raise its rate limits",
    )
    parser.add_argument(
        "--profile-server",
        metavar="DIR",
        type=Path,
        help="profile every real-server run with cProfile into DIR/*.pstats "
        "(slows the server: its figures are then not comparable)",
    )
    parser.add_argument(
        "--senders",
        type=int,
        default=None,
        help="senders in the fan-out scenarios (default 4: 'a few')",
    )
    parser.add_argument(
        "--generator-workers",
        type=int,
        default=1,
        help="generator processes (default 1: one core is "
        "left for it on a 2-core machine)",
    )
    parser.add_argument(
        "--irc-clients",
        type=int,
        default=None,
        help="clients in the IRC scenarios, fan-out and idle (default 500 and 2000)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="seconds of each measured window (default 2, --quick 1)",
    )
    args = parser.parse_args(argv)
    args.only = [name for name in args.only.split(",") if name] or list(ORDER)
    unknown = set(args.only) - set(ORDER + OPT_IN)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def split_cores() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The server gets the first core, the generator the others; on one core
    they share it (and the figures mean less)."""
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0],), tuple(cores[1:] or cores)


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM unwind the stack, so every server and generator
    process is stopped by the context manager that started it."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)  # even where the shell ignored it
    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    progress = Progress()
    soft, hard = raise_open_files_limit(WANTED_OPEN_FILES)
    sizes = plan.QUICK_SIZES if args.quick else plan.Sizes()
    if args.senders:
        sizes = dataclasses.replace(sizes, fanout_senders=args.senders)
    if args.irc_clients:
        sizes = dataclasses.replace(
            sizes, irc_members=args.irc_clients, irc_idle_clients=args.irc_clients
        )
    if args.window:
        sizes = dataclasses.replace(sizes, window_s=args.window)
    if soft < sizes.idle_clients + 256:
        progress.show(
            f"warning: open files limited to {soft} (hard {hard}): "
            f"too few for {sizes.idle_clients} idle clients"
        )
    server_cores, generator_cores = split_cores()
    with_chatroom = servers.chatroom_available() and not args.no_chatroom
    servers.EXTRA_CHATROOM_ARGS.extend(args.server_arg)
    if args.profile_server:
        args.profile_server.mkdir(parents=True, exist_ok=True)
        servers.PROFILE_DIR = args.profile_server.resolve()
    if with_chatroom and servers.EXTRA_CHATROOM_ARGS:
        progress.show(
            "real server gets extra arguments: " + " ".join(servers.EXTRA_CHATROOM_ARGS)
        )
    ctx = plan.Context(
        sizes=sizes,
        server_cores=server_cores,
        generator_cores=generator_cores,
        with_chatroom=with_chatroom,
        progress=progress,
        generator_workers=args.generator_workers,
        with_coalescing=not args.no_coalescing,
    )
    results: dict = {
        "machine": machine_description(),
        "config": {
            "quick": args.quick,
            "server_cores": server_cores,
            "generator_cores": generator_cores,
            "open_files_soft_limit": soft,
            "chatroom_measured": with_chatroom,
            "coalescing_baseline": not args.no_coalescing,
            "chatroom_extra_args": servers.EXTRA_CHATROOM_ARGS,
            "sizes": sizes.__dict__,
        },
        "scenarios": {},
    }
    rows: list[Row] = []
    started = time.monotonic()
    try:
        chosen = [name for name in ORDER + OPT_IN if name in args.only]
        for number, name in enumerate(chosen, 1):
            progress.stage = f"{number}/{len(chosen)} {name}"
            try:
                data, scenario_rows = scenarios.SCENARIOS[name](ctx)
            except Exception as error:  # one broken scenario spoils no other
                traceback.print_exc()
                data, scenario_rows = (
                    {"error": str(error)},
                    [Row(name, "FAILED", str(error)[:100], "", "", "", "")],
                )
            results["scenarios"][name] = data
            rows += scenario_rows
    finally:
        progress.done()
    results["seconds"] = time.monotonic() - started
    table = render_table(rows)
    header = (
        f"chatroom bench{' --quick' if args.quick else ''}: server on cores "
        f"{server_cores}, generator on {generator_cores}; "
        f"{results['seconds']:.0f}s; chat logins at bcrypt cost "
        f"{plan.CHAT_BCRYPT_ROUNDS}, storm at "
        f"{plan.PRODUCTION_BCRYPT_ROUNDS}"
        + ("" if with_chatroom else "; real server not in this checkout")
    )
    path = write_results(results, header + "\n\n" + table)
    print(header + "\n\n" + table + f"\n\nJSON: {path}")
    return 1 if any(row.figure == "FAILED" for row in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stop:
        sys.exit(f"interrupted ({stop}): every server and generator was stopped")
