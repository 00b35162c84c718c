"""The six scenarios of issue 4, each run against the bare baseline and, once
it exists, the real server, in the same run.

Every scenario function takes the run's ``Context`` and returns
``(data, rows)``: the full figures for the JSON file and the table rows.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace

from bench import servers
from bench.generator import ClientSpec
from bench.history_fill import fill_history
from bench.irc_scenario import scenario_irc, scenario_irc_idle
from bench.ladder import (
    FANOUT_TARGETS,
    MATCH_BARE,
    NO_TARGETS,
    ladder_rows,
    run_ladder,
    summarize_step,
    with_server_and_clients,
)
from bench.measure import percentiles, rss_bytes, socket_memory, socket_slab_bytes
from bench.plan import (
    CHAT_BCRYPT_ROUNDS,
    LOBBY,
    PASSWORD,
    PRODUCTION_BCRYPT_ROUNDS,
    Context,
    fanout_clients,
    room_clients,
)
from bench.pool import GeneratorPool
from bench.report import Row, number, rate, ratio, verdict
from bench.servers import BARE, COALESCING, ServerProcess, ServerSpec, is_baseline
from bench.timeline import scenario_timeline

# The chat during the login storm: moderate in messages, so the figure shows
# whether bcrypt blocks or starves the reactor, not whether the chat saturates.
STORM_CHAT_MESSAGES_PER_S = 200
STORM_CHAT_P99_X = 1.5  # the chat's p99 during the storm, at most x bare's
IDLE_KIB_PER_CONNECTION = 2.5
# A baseline this close to the generator's receive ceiling measures the generator.
GENERATOR_CEILING_NEAR = 0.8


# -- scenario 1: fan-out -----------------------------------------------------------


def fanout_ladder(ctx: Context, spec: ServerSpec, members: int) -> dict:
    """Scenario 1's ladder for one server and room size, run once per harness
    run: scenario 5 reuses it."""
    key = (spec.label, f"fanout-{members}")
    if key not in ctx.ladders:
        sizes = ctx.sizes
        clients = fanout_clients(members, sizes.fanout_senders, sizes.sampled_receivers)
        title = f"S1 fan-out N={members} {spec.label}"
        ctx.ladders[key] = with_server_and_clients(
            ctx,
            spec,
            clients,
            title,
            lambda server, pool: run_ladder(
                ctx, server, pool, clients, members - 1, title
            ),
        )
    return ctx.ladders[key]


def scenario_fanout(ctx: Context) -> tuple[dict, list[Row]]:
    data: dict = {}
    rows: list[Row] = []
    specs = ctx.compared_specs(coalescing=True, bcrypt_rounds=CHAT_BCRYPT_ROUNDS)
    targets = {
        ctx.sizes.target_members: FANOUT_TARGETS,
        ctx.sizes.large_members: MATCH_BARE,
    }
    for members in ctx.sizes.fanout_members:
        runs = {spec.label: fanout_ladder(ctx, spec, members) for spec in specs}
        data[f"N={members}"] = runs
        rows += ladder_rows(
            f"1 fan-out N={members}", runs, targets.get(members, NO_TARGETS)
        )
    return data, rows


# -- scenario 2: many rooms ---------------------------------------------------------


def scenario_rooms(ctx: Context) -> tuple[dict, list[Row]]:
    sizes = ctx.sizes
    clients = room_clients(sizes.rooms, sizes.room_size, chatting=True)
    runs = {}
    for spec in ctx.compared_specs(coalescing=True, bcrypt_rounds=CHAT_BCRYPT_ROUNDS):
        title = f"S2 {sizes.rooms} rooms of {sizes.room_size} {spec.label}"
        runs[spec.label] = with_server_and_clients(
            ctx,
            spec,
            clients,
            title,
            lambda server, pool, title=title: run_ladder(
                ctx, server, pool, clients, sizes.room_size - 1, title
            ),
        )
    scenario = f"2 rooms {sizes.rooms}x{sizes.room_size}"
    return runs, ladder_rows(scenario, runs, MATCH_BARE)


# -- scenario 3: idle connections -------------------------------------------------


def scenario_idle(ctx: Context) -> tuple[dict, list[Row]]:
    sizes = ctx.sizes
    clients = room_clients(
        sizes.idle_clients // sizes.room_size, sizes.room_size, chatting=False
    )
    runs = {}
    for spec in ctx.compared_specs(bcrypt_rounds=CHAT_BCRYPT_ROUNDS):
        title = f"S3 {len(clients)} idle clients {spec.label}"
        ctx.progress.show(f"{title}: starting")
        with ServerProcess(spec, ctx.server_cores) as server:
            time.sleep(0.5)  # let start-up allocations settle
            rss_before, sockets_before = rss_bytes(server.pid), socket_memory()
            slab_before = socket_slab_bytes()
            with GeneratorPool(
                server.port, clients, server.pid, ctx.generator_cores
            ) as pool:
                ctx.progress.show(f"{title}: logging in")
                login = pool.login()
                time.sleep(1.0)
                rss_after, sockets_after = rss_bytes(server.pid), socket_memory()
                slab_after = socket_slab_bytes()
        connected = login["ready"] or math.nan
        runs[spec.label] = {
            "server": spec.label,
            "clients": len(clients),
            "logged_in": login["ready"],
            "login_errors": login["first_errors"],
            "login_seconds": login["seconds"],
            "rss_before_bytes": rss_before,
            "rss_after_bytes": rss_after,
            "rss_per_connection_bytes": (rss_after - rss_before) / connected,
            "tcp_sockets_added": sockets_after["tcp_inuse"]
            - sockets_before["tcp_inuse"],
            # Both ends of each loopback connection are counted here.
            "kernel_tcp_bytes_per_connection": (
                sockets_after["tcp_mem_bytes"] - sockets_before["tcp_mem_bytes"]
            )
            / connected,
            "kernel_socket_slab_bytes_per_connection": (
                (slab_after - slab_before) / connected
                if slab_before is not None
                else math.nan
            ),
        }
    bare = runs[BARE]
    real = next((run for label, run in runs.items() if not is_baseline(label)), None)
    per_conn = real and real["rss_per_connection_bytes"] / 1024
    scenario = f"3 idle {len(clients)}"
    rows = [
        Row(
            scenario,
            "server RSS per connection (KiB)",
            number(bare["rss_per_connection_bytes"] / 1024),
            number(per_conn),
            number(ratio(per_conn, bare["rss_per_connection_bytes"] / 1024)),
            f"<={IDLE_KIB_PER_CONNECTION:g} KiB",
            verdict(per_conn <= IDLE_KIB_PER_CONNECTION) if real else "n/a",
        ),
        Row(
            scenario,
            "kernel TCP buffers per connection, both ends (KiB)",
            number(bare["kernel_tcp_bytes_per_connection"] / 1024),
            number(real and real["kernel_tcp_bytes_per_connection"] / 1024),
        ),
        Row(
            scenario,
            "kernel socket slabs per connection, both ends (KiB)",
            number(bare["kernel_socket_slab_bytes_per_connection"] / 1024),
            number(real and real["kernel_socket_slab_bytes_per_connection"] / 1024),
        ),
        Row(
            scenario,
            f"time to log all in (s, bcrypt {CHAT_BCRYPT_ROUNDS})",
            number(bare["login_seconds"], 1),
            number(real and real["login_seconds"], 1),
        ),
    ]
    return runs, rows


# -- scenario 4: login storm ------------------------------------------------------


def bcrypt_seconds(rounds: int) -> float:
    import bcrypt

    started = time.monotonic()
    bcrypt.hashpw(b"bench", bcrypt.gensalt(rounds))
    return time.monotonic() - started


def scenario_storm(ctx: Context) -> tuple[dict, list[Row]]:
    sizes = ctx.sizes
    members = sizes.storm_members
    chat_clients = fanout_clients(
        members, sizes.fanout_senders, sizes.sampled_receivers
    )
    storm_clients = [
        ClientSpec(
            name=f"storm{i:04d}",
            room=LOBBY,
            login_lines=(f"/register storm{i:04d} {PASSWORD}",),
        )
        for i in range(sizes.storm_logins)
    ]
    # bcrypt runs in the server's threads: let them use every core, as in
    # production; the generator stays on its own core(s).
    all_cores = tuple(sorted(os.sched_getaffinity(0)))
    hash_seconds = bcrypt_seconds(PRODUCTION_BCRYPT_ROUNDS)
    ceiling = len(all_cores) / hash_seconds
    runs = {}
    for spec in ctx.compared_specs(bcrypt_rounds=PRODUCTION_BCRYPT_ROUNDS):
        title = f"S4 storm of {len(storm_clients)} logins {spec.label}"

        def storm(server: ServerProcess, pool: GeneratorPool, title: str = title):
            with GeneratorPool(
                server.port,
                storm_clients,
                server.pid,
                ctx.generator_cores,
                connect_concurrency=100,
            ) as storm:
                pool.start_chat(
                    STORM_CHAT_MESSAGES_PER_S,
                    warmup_s=sizes.warmup_s,
                    window_s=3600,
                    drain_s=sizes.drain_s,
                    until_stopped=True,
                )
                time.sleep(sizes.warmup_s)
                window_start = time.monotonic()
                ctx.progress.show(
                    f"{title}: storming during a chat at "
                    f"{STORM_CHAT_MESSAGES_PER_S} messages/s"
                )
                logins = storm.login()
                # However fast the storm, the chat is measured for a full window.
                time.sleep(max(0.0, window_start + sizes.window_s - time.monotonic()))
                pool.stop_chat()
                chat = summarize_step(
                    pool.finish_chat(),
                    chat_clients,
                    STORM_CHAT_MESSAGES_PER_S * (members - 1),
                )
            latencies = percentiles(logins["login_latencies_ns"])
            return {
                "chat": chat,
                "logins": logins["ready"],
                "login_failures": logins["first_errors"],
                "storm_seconds": logins["seconds"],
                "logins_per_s": logins["ready"] / logins["seconds"],
                "login_p50_ms": latencies["p50_ms"],
                "login_p99_ms": latencies["p99_ms"],
            }

        runs[spec.label] = with_server_and_clients(
            ctx, spec, chat_clients, title, storm, server_cores=all_cores
        )
    data = {
        "bcrypt_cost_12_seconds": hash_seconds,
        "logins_per_s_ceiling": ceiling,
        "server_cores": all_cores,
        **runs,
    }
    bare = runs[BARE]
    real = next((run for label, run in runs.items() if not is_baseline(label)), None)
    chat_p99 = real and real["chat"]["p99_ms"]
    chat_ratio = ratio(chat_p99, bare["chat"]["p99_ms"])
    scenario = f"4 storm {len(storm_clients)}"
    rows = [
        Row(
            scenario,
            f"chat p99 ms during storm (N={members}, "
            f"{STORM_CHAT_MESSAGES_PER_S} msgs/s)",
            number(bare["chat"]["p99_ms"], 1),
            number(chat_p99, 1),
            number(chat_ratio),
            f"<={STORM_CHAT_P99_X:g}x bare",
            verdict(
                chat_p99 <= STORM_CHAT_P99_X * bare["chat"]["p99_ms"] if real else None
            ),
        ),
        Row(
            scenario,
            f"logins/s (cost 12; ceiling {ceiling:.1f}/s on {len(all_cores)} cores)",
            number(bare["logins_per_s"], 1),
            number(real and real["logins_per_s"], 1),
            number(real and real["logins_per_s"] / ceiling),
            ">=0.8x ceiling",
            verdict(real["logins_per_s"] >= 0.8 * ceiling if real else None),
        ),
    ]
    return data, rows


# -- scenario 5: persistence cost ----------------------------------------------------


def scenario_persistence(ctx: Context) -> tuple[dict, list[Row]]:
    members = ctx.sizes.target_members
    scenario = f"5 persistence N={members}"
    if not ctx.with_chatroom:
        return {}, [
            Row(
                scenario,
                "SQLite file / in-memory deliveries/s",
                "-",
                "-",
                "",
                ">=0.9",
                "n/a",
            )
        ]
    on_file = fanout_ladder(
        ctx, servers.chatroom_spec(bcrypt_rounds=CHAT_BCRYPT_ROUNDS), members
    )
    in_memory = fanout_ladder(
        ctx,
        servers.chatroom_spec(db=":memory:", bcrypt_rounds=CHAT_BCRYPT_ROUNDS),
        members,
    )
    share = ratio(
        on_file["sustainable_deliveries_per_s"],
        in_memory["sustainable_deliveries_per_s"],
    )
    file_messages = max(
        (s["messages_per_s"] for s in on_file["steps"] if s["sustainable"]), default=0.0
    )
    rows = [
        Row(
            scenario,
            "sustainable deliveries/s: in memory | SQLite file",
            rate(in_memory["sustainable_deliveries_per_s"]),
            rate(on_file["sustainable_deliveries_per_s"]),
            number(share),
            ">=0.9x memory",
            verdict(share is not None and share >= 0.9),
        ),
        Row(
            scenario,
            "messages stored/s at that rate",
            "-",
            rate(file_messages),
            "",
            "(one room: few msgs, many deliveries)",
            "",
        ),
    ]
    return {"sqlite_file": on_file, "in_memory": in_memory}, rows


# -- scenario 6: startup with a big history ---------------------------------------


def timed_login(port: int, name: str, deadline: float) -> float:
    """Keep trying ``/login`` until it succeeds; returns when it did."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((servers.HOST, port), timeout=5) as sock:
                sock.sendall(f"/login {name} {PASSWORD}\r\n".encode())
                reply = b""
                while b"+OK" not in reply and b"-ERR" not in reply:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                if b"\n+OK" in b"\n" + reply:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"no successful /login {name} before the deadline")


def scenario_history(ctx: Context) -> tuple[dict, list[Row]]:
    sizes = ctx.sizes
    scenario = f"6 history {rate(sizes.history_messages)} msgs"
    if not ctx.with_chatroom:
        return {}, [
            Row(scenario, "start to first login (s)", "-", "-", "", "<2s", "n/a"),
            Row(scenario, "/history p99 (ms)", "-", "-", "", "<10ms", "n/a"),
        ]
    reader = ClientSpec(
        name="reader",
        room="history",
        login_lines=(f"/register reader {PASSWORD}", "/c history"),
    )
    with tempfile.TemporaryDirectory(prefix="chatroom-bench-history-") as data_dir:
        db_path = os.path.join(data_dir, "bench.sqlite")
        spec = servers.chatroom_spec(db=db_path, bcrypt_rounds=CHAT_BCRYPT_ROUNDS)
        ctx.progress.show("S6: creating the schema and the room")
        with_server_and_clients(
            ctx,
            spec,
            [reader],
            "S6 setup",
            lambda server, pool: {},
        )
        ctx.progress.show(f"S6: storing {rate(sizes.history_messages)} messages")
        fill_s = fill_history(db_path, "history", "reader", sizes.history_messages)
        ctx.progress.show("S6: restarting on the big history")
        returning = replace(reader, login_lines=(f"/login reader {PASSWORD}",))
        server = ServerProcess(spec, ctx.server_cores, data_dir=data_dir)
        with server:
            login_at = timed_login(server.port, "reader", server.started_at + 60)
            with GeneratorPool(
                server.port, [returning], server.pid, ctx.generator_cores
            ) as pool:
                pool.login()
                probe = pool.probe("/history history 50", sizes.history_probes)
    history = percentiles(probe["latencies_ns"])
    start_s = login_at - server.started_at
    data = {
        "fill_seconds": fill_s,
        "listening_after_s": server.listening_after_s,
        "first_login_after_s": start_s,
        "history_errors": probe["errors"],
        "history_last_error": probe["last_error"],
        **history,
    }
    rows = [
        Row(
            scenario,
            "start to first login (s)",
            "-",
            number(start_s),
            "",
            "<2s",
            verdict(start_s < 2),
        ),
        Row(
            scenario,
            "/history 50 p50/p99 (ms)",
            "-",
            f"{number(history['p50_ms'], 1)}/{number(history['p99_ms'], 1)}",
            "",
            "p99<10ms",
            verdict(history["p99_ms"] < 10 and not probe["errors"]),
        ),
    ]
    return data, rows


# -- the generator's own limits -----------------------------------------------------


def generator_check(ctx: Context) -> tuple[dict, list[Row]]:
    """Offer far more than any server can take to the null server: what the
    generator sends at most; its receive cost per delivery comes from the
    bare fan-out (generator CPU per delivery at bare's busiest step)."""
    sizes = ctx.sizes
    members = sizes.target_members
    clients = fanout_clients(members, sizes.fanout_senders, sizes.sampled_receivers)
    title = f"generator check N={members} null"

    def flood(server: ServerProcess, pool: GeneratorPool) -> dict:
        ctx.progress.show(f"{title}: sending as fast as it can")
        raw = pool.chat(
            1_000_000,
            warmup_s=sizes.warmup_s,
            window_s=sizes.window_s,
            drain_s=sizes.drain_s,
        )
        return {
            "messages_per_s": sum(raw["sent_in_window"].values()) / raw["window_s"],
            "generator_cpu_share": raw["generator_cpu_s"] / raw["window_s"],
        }

    null = with_server_and_clients(ctx, servers.null_spec(), clients, title, flood)
    baselines = {
        label: ctx.ladders[(label, f"fanout-{members}")]
        for label in (BARE, COALESCING)
        if (label, f"fanout-{members}") in ctx.ladders
    }
    # Per-delivery cost falls with load (more lines per recv): take the step
    # that delivered most, of either baseline.
    busiest_label, busiest = max(
        (
            (label, step)
            for label, run in baselines.items()
            for step in run["steps"]
            if step["delivered_per_s"] > 0
        ),
        key=lambda item: item[1]["delivered_per_s"],
        default=(None, None),
    )
    receive_ceiling = (
        1e6 / busiest["generator_cpu_us_per_delivery"] if busiest else None
    )
    data = {
        "null_send_messages_per_s": null["messages_per_s"],
        "null_send_cpu_share": null["generator_cpu_share"],
        "busiest_baseline": busiest_label,
        "busiest_step": busiest,
        "receive_ceiling_deliveries_per_s": receive_ceiling,
    }
    rows = [
        Row(
            "generator",
            "max messages/s sent (null server)",
            rate(null["messages_per_s"]),
            "",
        ),
        Row(
            "generator",
            f"receive ceiling deliveries/s per core (N={members})",
            rate(receive_ceiling) if busiest else "(needs the fanout scenario)",
            "",
        ),
    ]
    if busiest:
        rows.append(
            Row(
                "generator",
                f"its CPU share at {busiest_label}'s busiest step "
                f"({rate(busiest['delivered_per_s'])}/s)",
                number(busiest["generator_cpu_share"]),
                "",
            )
        )
    coal = baselines.get(COALESCING)
    if coal and receive_ceiling:
        share = coal["sustainable_deliveries_per_s"] / (
            receive_ceiling * ctx.generator_capacity
        )
        at_ceiling = coal["generator_bound"] or share >= GENERATOR_CEILING_NEAR
        data["coalescing_share_of_ceiling"] = share
        data["coalescing_at_generator_ceiling"] = at_ceiling
        rows.append(
            Row(
                "generator",
                "coalescing bare's sustainable rate / the receive ceiling",
                "",
                "",
                coalescing=number(share),
                target=(
                    "AT THE GENERATOR'S CEILING: coalescing figures are lower bounds"
                    if at_ceiling
                    else "below the ceiling: the coalescing figures are its own"
                ),
            )
        )
    return data, rows


SCENARIOS: dict[str, Callable[[Context], tuple[dict, list[Row]]]] = {
    "fanout": scenario_fanout,
    "rooms": scenario_rooms,
    "idle": scenario_idle,
    "storm": scenario_storm,
    "persistence": scenario_persistence,
    "history": scenario_history,
    "generator": generator_check,
    "timeline": scenario_timeline,
    "irc": scenario_irc,
    "irc-idle": scenario_irc_idle,
}
