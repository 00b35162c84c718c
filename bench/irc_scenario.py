"""Issue 13's benchmark: the fan-out scenario over IRC, chatroom's IRC port
against ngIRCd and InspIRCd in the same run, judged against the better C
server of the run.

``irc``: ``irc_members`` guests in one channel, a few of them sending; a
paced chat at a fixed rate (p50/p99), then the ladder of scenario 1
(saturated deliveries/s). ``irc-idle``: ``irc_idle_clients`` guests in
channels of ten, the server's RSS growth per connection.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from bench import irc_servers
from bench.generator import IRC, ClientSpec
from bench.ladder import run_ladder, summarize_step, with_server_and_clients
from bench.measure import rss_bytes
from bench.plan import Context, spread
from bench.pool import GeneratorPool
from bench.report import Row, number, rate, ratio, verdict
from bench.servers import ServerProcess, ServerSpec

CHANNEL = "bench"
PACED_P99_X = 1.5  # paced p99 at most this times the better C server's
IDLE_ROOM_SIZE = 10


def irc_clients(
    members: int,
    senders: int,
    sampled: int,
    room: str = CHANNEL,
    room_size: int | None = None,
) -> list[ClientSpec]:
    """IRC guests; with ``room_size`` they fill channels of that size."""
    sending = spread(senders, members)
    receivers = [i for i in range(members) if i not in sending]
    sampling = {receivers[i] for i in spread(sampled, len(receivers))}
    return [
        ClientSpec(
            name=f"b{i:05d}",
            room=room if room_size is None else f"{room}{i // room_size:04d}",
            login_lines=(f"NICK b{i:05d}", f"USER b{i:05d} 0 * :bench"),
            sender=i in sending,
            sampled=i in sampling,
            kind=IRC,
            # Else the generator's core, not the C servers, ends their ladder.
            bulk=i not in sending and i not in sampling,
        )
        for i in range(members)
    ]


def compared_specs() -> list[ServerSpec]:
    return [irc_servers.chatroom_irc_spec(), *irc_servers.c_server_specs()]


def fanout_run(ctx: Context, spec: ServerSpec, clients: Sequence[ClientSpec]) -> dict:
    sizes = ctx.sizes
    members = len(clients)
    title = f"IRC fan-out N={members} {spec.label}"

    def body(server: ServerProcess, pool: GeneratorPool) -> dict:
        load = sizes.irc_paced_deliveries
        ctx.progress.show(f"{title}: paced at {rate(load)} deliveries/s")
        paced = summarize_step(
            pool.chat(
                load / (members - 1),
                warmup_s=sizes.warmup_s,
                window_s=sizes.window_s,
                drain_s=sizes.drain_s,
            ),
            clients,
            load,
        )
        ladder = run_ladder(ctx, server, pool, clients, members - 1, title)
        return {"paced": paced, **ladder}

    return with_server_and_clients(ctx, spec, clients, title, body)


def scenario_irc(ctx: Context) -> tuple[dict, list[Row]]:
    sizes = ctx.sizes
    clients = irc_clients(
        sizes.irc_members, sizes.fanout_senders, sizes.sampled_receivers
    )
    runs = {spec.label: fanout_run(ctx, spec, clients) for spec in compared_specs()}
    return runs, fanout_rows(f"IRC fan-out N={sizes.irc_members}", runs)


def fanout_rows(scenario: str, runs: dict[str, dict]) -> list[Row]:
    ours = runs.get(irc_servers.CHATROOM_IRC)
    theirs = {
        label: run for label, run in runs.items() if label != irc_servers.CHATROOM_IRC
    }

    def sustained(run: dict) -> float:
        return run["sustainable_deliveries_per_s"]

    def shown(run: dict | None) -> str:
        if run is None:
            return "-"
        figure = rate(sustained(run))
        return (">=" + figure) if run["generator_bound"] else figure

    def p99(run: dict) -> float:
        return run["paced"]["p99_ms"]

    rows = []
    if theirs:
        best = max(theirs, key=lambda label: sustained(theirs[label]))
        fast = ratio(ours and sustained(ours), sustained(theirs[best]))
        rows.append(
            Row(
                scenario,
                "sustainable deliveries/s (p99<=100ms)",
                f"{shown(theirs[best])} ({best})",
                shown(ours),
                number(fast),
                ">=1x better C",
                verdict(fast >= 1.0 if fast is not None else None),
            )
        )
        low = min(theirs, key=lambda label: p99(theirs[label]))
        slow = ratio(ours and p99(ours), p99(theirs[low]))
        load = next(iter(runs.values()))["paced"]["requested_deliveries_per_s"]
        rows.append(
            Row(
                scenario,
                f"paced p99 ms @{rate(load)}/s",
                f"{number(p99(theirs[low]), 1)} ({low})",
                number(ours and p99(ours), 1),
                number(slow),
                f"<={PACED_P99_X:g}x better C",
                verdict(slow <= PACED_P99_X if slow is not None else None),
            )
        )
    for label, run in runs.items():
        paced = run["paced"]
        rows.append(
            Row(
                scenario,
                f"  {label}: deliveries/s; paced p50/p99 ms; "
                "other CPU max; ladder ended by",
                "",
                f"{shown(run)}; {number(paced['p50_ms'], 1)}/"
                f"{number(paced['p99_ms'], 1)}; "
                f"{number(run['max_other_cpu_share'])}; {run['ended_by']}",
            )
        )
    return rows


def scenario_irc_idle(ctx: Context) -> tuple[dict, list[Row]]:
    clients = irc_clients(ctx.sizes.irc_idle_clients, 0, 0, "idle", IDLE_ROOM_SIZE)
    runs = {}
    for spec in compared_specs():
        title = f"IRC idle {len(clients)} {spec.label}"
        ctx.progress.show(f"{title}: starting")
        with ServerProcess(spec, ctx.server_cores) as server:
            time.sleep(0.5)  # let start-up allocations settle
            before = rss_bytes(server.pid)
            with GeneratorPool(
                server.port, clients, server.pid, ctx.generator_cores
            ) as pool:
                ctx.progress.show(f"{title}: logging in")
                login = pool.login()
                time.sleep(1.0)
                after = rss_bytes(server.pid)
        runs[spec.label] = {
            "clients": len(clients),
            "logged_in": login["ready"],
            "login_errors": login["first_errors"],
            "rss_before_bytes": before,
            "rss_after_bytes": after,
            "rss_per_connection_bytes": (after - before) / (login["ready"] or math.nan),
        }
    return runs, idle_rows(f"IRC idle {len(clients)}", runs)


def idle_rows(scenario: str, runs: dict[str, dict]) -> list[Row]:
    def kib(run: dict | None) -> float | None:
        return run and run["rss_per_connection_bytes"] / 1024

    ours = kib(runs.get(irc_servers.CHATROOM_IRC))
    theirs = {
        label: kib(run)
        for label, run in runs.items()
        if label != irc_servers.CHATROOM_IRC
    }
    if not theirs:
        return [Row(scenario, "server RSS per connection (KiB)", "-", number(ours))]
    low = min(theirs, key=theirs.get)
    both = "; ".join(f"{label} {number(value)}" for label, value in theirs.items())
    return [
        Row(
            scenario,
            "server RSS per connection (KiB)",
            both,
            number(ours),
            number(ratio(ours, theirs[low])),
            "below both C",
            verdict(
                all(ours < value for value in theirs.values())
                if ours is not None
                else None
            ),
        )
    ]
