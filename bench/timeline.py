"""The timeline of one room message inside the real server, from a measurement.

The server runs under bench.probes (the product untouched), pinned as in the
other scenarios, with N members in one room and a few senders; the generator
sends at an idle rate (each message alone in the server), then at a moderate
one. Each stage's p50/p99 comes from the probes' stamps; a stage whose probe
found no entry point says n/a. The probes cost CPU themselves (a wrapped
``transport.write`` per delivery): the stages are what they show, the
bench's other scenarios what the server does.

    python -m bench.timeline [--quick] [--members N]
    python -m bench --only timeline
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from bench import plan, servers
from bench.ladder import with_server_and_clients
from bench.measure import percentiles, raise_open_files_limit
from bench.report import Progress, Row, number, rate

# (stage, from stamp, to stamp), in the order a message meets them when
# storage comes before fan-out; every stage is measured on its own, so a
# server that reorders them shows it in "arrival -> fan-out starts".
STAGES = (
    ("to the server: sent -> read (kernel, reactor)", "sent", "read"),
    ("read: bytes read -> lineReceived", "read", "line"),
    ("parse: lineReceived -> command dispatch", "line", "dispatch"),
    ("sequence number: asked -> got", "seq asked", "seq got"),
    ("store queue: queued -> its transaction starts", "queued", "transaction"),
    ("store write: transaction -> commit", "transaction", "commit"),
    ("commit", "commit", "committed"),
    ("commit -> back in the reactor", "committed", "stored"),
    ("fan-out to the members: start -> end", "fan-out", "fanned out"),
    ("arrival -> fan-out starts", "line", "fan-out"),
)
WRITE_STAGE = "write: transport.write -> kernel (per connection)"
END_TO_END = "end to end: sent -> received (sampled)"


def probed_spec() -> servers.ServerSpec:
    """The real server as the other scenarios run it, under bench.probes."""
    spec = servers.chatroom_spec(bcrypt_rounds=plan.CHAT_BCRYPT_ROUNDS)
    return servers.ServerSpec(
        spec.label + " with probes",
        (
            sys.executable,
            "-m",
            "bench.probes",
            "{data_dir}/probes.json",
            *spec.argv[1:],
        ),
        spec.note,
    )


def with_transactions(messages: dict[str, dict], transactions: list) -> None:
    """Give each stored message the stamps of the transaction that stored it:
    the last one to commit before its write's Deferred fired."""
    transactions = sorted(transactions, key=lambda t: t[2])
    ends = [t[2] for t in transactions]
    for stamps in messages.values():
        stored = stamps.get("stored")
        at = bisect.bisect_right(ends, stored) - 1 if stored else -1
        if at >= 0 and transactions[at][0] >= stamps.get("queued", 0):
            start, commit, committed = transactions[at]
            stamps.update(transaction=start, commit=commit, committed=committed)


def summary(durations_ns: list[int]) -> dict | None:
    """Percentiles and how many samples, or None: the stage was not seen."""
    if not durations_ns:
        return None
    return {**percentiles(durations_ns), "samples": len(durations_ns)}


def stage_figures(probes: dict, phases: dict[str, dict]) -> dict[str, dict]:
    """For each phase, each stage's percentiles (or None: not measured)."""
    messages = probes["messages"]
    with_transactions(messages, probes["transactions"])
    writes = probes["writes"]
    sent_at, waited = writes[0::2], writes[1::2]
    figures: dict[str, dict] = {}
    for phase, run in phases.items():
        begin, end = run["from_ns"], run["to_ns"]
        chosen = [
            {"sent": int(key), **stamps}
            for key, stamps in messages.items()
            if begin <= int(key) <= end
        ]
        rows = {}
        for stage, start, stop in STAGES:
            durations = [m[stop] - m[start] for m in chosen if start in m and stop in m]
            rows[stage] = summary(durations)
        rows[WRITE_STAGE] = summary(
            [w for at, w in zip(sent_at, waited, strict=True) if begin <= at <= end]
        )
        rows[END_TO_END] = run["end_to_end"]
        figures[phase] = {"messages": len(chosen), "stages": rows}
    return figures


def measure(ctx: plan.Context) -> dict:
    """Run both phases on one probed server; the probes' stamps, per stage."""
    sizes = ctx.sizes
    members = sizes.timeline_members
    clients = plan.fanout_clients(
        members, sizes.fanout_senders, sizes.sampled_receivers
    )
    loads = {
        "idle": sizes.timeline_idle_messages_per_s,
        "moderate": sizes.timeline_moderate_deliveries / (members - 1),
    }
    title = f"timeline N={members}"
    with tempfile.TemporaryDirectory(prefix="chatroom-bench-timeline-") as data_dir:
        spec = probed_spec()

        def phases(server, pool) -> dict:
            runs = {}
            for phase, messages_per_s in loads.items():
                ctx.progress.show(
                    f"{title}: {phase}, {rate(messages_per_s)} messages/s"
                )
                began = time.monotonic_ns()
                raw = pool.chat(
                    messages_per_s,
                    warmup_s=sizes.warmup_s,
                    window_s=sizes.window_s,
                    drain_s=sizes.drain_s,
                )
                runs[phase] = {
                    "from_ns": began,
                    "to_ns": time.monotonic_ns(),
                    "messages_per_s": messages_per_s,
                    "deliveries_per_s": messages_per_s * (members - 1),
                    "end_to_end": summary(raw["latencies_ns"]),
                }
            return {"phases": runs}

        # A data dir of ours: the probes write there as the server stops.
        runs = with_server_and_clients(
            ctx, spec, clients, title, phases, data_dir=data_dir
        )["phases"]
        probes = json.loads((Path(data_dir) / "probes.json").read_text())
    return {
        "members": members,
        "missing_probes": probes["missing"],
        "phases": runs,
        "figures": stage_figures(probes, runs),
    }


def ms(figures: dict | None) -> str:
    if figures is None:
        return "n/a"
    return f"{number(figures['p50_ms'], 3)}/{number(figures['p99_ms'], 3)}"


def scenario_timeline(ctx: plan.Context) -> tuple[dict, list[Row]]:
    scenario = f"7 timeline N={ctx.sizes.timeline_members}"
    if not ctx.with_chatroom:
        return {}, [Row(scenario, "stage p50/p99 ms", "-", "-", "", "", "n/a")]
    data = measure(ctx)
    rows = []
    for phase, figures in data["figures"].items():
        load = rate(data["phases"][phase]["deliveries_per_s"])
        for stage, percentile in figures["stages"].items():
            rows.append(
                Row(
                    f"{scenario} {phase} @{load}/s",
                    f"{stage} p50/p99 ms",
                    "-",
                    ms(percentile),
                )
            )
    if data["missing_probes"]:
        rows.append(
            Row(scenario, "probes not found", "", ", ".join(data["missing_probes"]))
        )
    return data, rows


def render(data: dict) -> str:
    """The stages as a table of their own: one column per phase."""
    phases = list(data["figures"])
    header = ["stage (p50/p99 ms)"] + [
        f"{phase} @{rate(data['phases'][phase]['deliveries_per_s'])}/s"
        for phase in phases
    ]
    lines = [header]
    for stage in data["figures"][phases[0]]["stages"]:
        lines.append(
            [stage] + [ms(data["figures"][p]["stages"][stage]) for p in phases]
        )
    lines.append(
        ["messages seen"] + [str(data["figures"][p]["messages"]) for p in phases]
    )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
    if data["missing_probes"]:
        text += "\nprobes not found: " + ", ".join(data["missing_probes"])
    return f"timeline of a room message, N={data['members']}\n\n{text}"


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import WANTED_OPEN_FILES, split_cores

    parser = argparse.ArgumentParser(
        prog="python -m bench.timeline", description=__doc__
    )
    parser.add_argument(
        "--quick", action="store_true", help="20 members, short windows"
    )
    parser.add_argument("--members", type=int, help="room size (default 500)")
    args = parser.parse_args(argv)
    raise_open_files_limit(WANTED_OPEN_FILES)
    sizes = plan.QUICK_SIZES if args.quick else plan.Sizes()
    if args.members:
        sizes = dataclasses.replace(sizes, timeline_members=args.members)
    server_cores, generator_cores = split_cores()
    progress = Progress()
    ctx = plan.Context(sizes, server_cores, generator_cores, True, progress)
    try:
        data = measure(ctx)
    finally:
        progress.done()
    print(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
