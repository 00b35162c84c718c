"""A load ladder: offered deliveries/s raised step by step, each step measured
and judged sustainable or not, and the table rows that compare two ladders."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

from bench.generator import ClientSpec
from bench.measure import percentiles
from bench.plan import HIGH_DELIVERIES, MODERATE_DELIVERIES, Context
from bench.pool import GeneratorPool
from bench.report import Row, number, rate, ratio, verdict
from bench.servers import ServerProcess, ServerSpec

P99_LIMIT_MS = 100.0  # a load step with a higher p99 is not sustainable
# A step that fails while other processes took this much CPU (in cores) is
# run again (Sizes.disturbed_attempts): on a shared machine a neighbour's burst
# is not our limit.
DISTURBED_SHARE = 0.25


def summarize_step(raw: dict, clients: Sequence[ClientSpec], requested: float) -> dict:
    """Turn a chat phase's counts into rates, latency percentiles and CPU cost."""
    members = Counter(c.room for c in clients)
    sampled = Counter(c.room for c in clients if c.sampled)
    offered = expected_samples = sent = 0
    for index, count in raw["sent_in_window"].items():
        client = clients[index]
        sent += count
        offered += count * (members[client.room] - 1)
        expected_samples += count * (sampled[client.room] - client.sampled)
    window = raw["window_s"] or math.nan
    samples = raw["latencies_ns"]
    delivered = raw["window_lines"] - raw["window_acks"]
    step = {
        "requested_deliveries_per_s": requested,
        "offered_deliveries_per_s": offered / window,
        "delivered_per_s": delivered / window,
        "messages_per_s": sent / window,
        **percentiles(samples, missing=max(0, expected_samples - len(samples))),
        "latency_samples": len(samples),
        "missing_samples": max(0, expected_samples - len(samples)),
        "server_cpu_us_per_delivery": (
            raw["server_cpu_s"] / delivered * 1e6 if delivered > 0 else math.nan
        ),
        "server_cpu_share": raw["server_cpu_s"] / window,
        "generator_cpu_share": raw["generator_cpu_s"] / window,
        # Whatever else ran on the machine meanwhile (other users, the kernel's
        # own threads): a step with a high share is a disturbed figure.
        "other_cpu_share": max(
            0.0,
            (raw["machine_busy_s"] - raw["server_cpu_s"] - raw["generator_cpu_s"])
            / window,
        ),
        "generator_cpu_us_per_delivery": (
            raw["generator_cpu_s"] / delivered * 1e6 if delivered > 0 else math.nan
        ),
        **{
            key: raw[key]
            for key in (
                "window_s",
                "skipped",
                "throttled",
                "unacked",
                "errors",
                "last_error",
                "lost_connections",
            )
        },
    }
    step["generator_limited"] = step["offered_deliveries_per_s"] < 0.9 * requested
    step["sustainable"] = (
        step["p99_ms"] <= P99_LIMIT_MS
        and step["delivered_per_s"] >= 0.9 * step["offered_deliveries_per_s"]
        and not (raw["errors"] or raw["throttled"] or raw["lost_connections"])
    )
    return step


def run_ladder(
    ctx: Context,
    server: ServerProcess,
    pool: GeneratorPool,
    clients: Sequence[ClientSpec],
    per_message: int,
    title: str,
) -> dict:
    """Raise the offered deliveries/s step by step until a step is not
    sustainable (p99 over 100 ms, deliveries falling behind, errors) or the
    generator cannot offer more."""
    steps = []
    ended_by = "top of the ladder"
    for requested in ctx.sizes.ladder:
        for attempt in range(1, ctx.sizes.disturbed_attempts + 1):
            ctx.progress.show(
                f"{title}: {rate(requested)} deliveries/s offered"
                + (
                    f" (attempt {attempt}: the last was disturbed)"
                    if attempt > 1
                    else ""
                )
            )
            raw = pool.chat(
                requested / per_message,
                warmup_s=ctx.sizes.warmup_s,
                window_s=ctx.sizes.window_s,
                drain_s=ctx.sizes.drain_s,
            )
            step = summarize_step(raw, clients, requested)
            step["attempt"] = attempt
            if step["sustainable"] or step["other_cpu_share"] < DISTURBED_SHARE:
                break
        steps.append(step)
        if not server.alive():
            ended_by = "server died"
            break
        if not step["sustainable"]:
            p99 = step["p99_ms"]
            ended_by = (
                f"at {rate(requested)}: p99 "
                + (f"{p99:.1f} ms" if math.isfinite(p99) else ">1% undelivered")
                + f", delivered {rate(step['delivered_per_s'])}/s"
                + (f", {step['last_error']}" if step["last_error"] else "")
            )
            break
        if step["generator_limited"]:
            ended_by = f"generator could not offer {rate(requested)}/s"
            break
    good = [s for s in steps if s["sustainable"]]
    return {
        "steps": steps,
        "ended_by": ended_by,
        "sustainable_deliveries_per_s": max(
            (s["delivered_per_s"] for s in good), default=0.0
        ),
        "max_other_cpu_share": max((s["other_cpu_share"] for s in steps), default=0),
    }


def step_at(run: dict | None, load: int) -> dict | None:
    """The ladder step that offered ``load`` deliveries/s, if it got there."""
    steps = run["steps"] if run else ()
    return next((s for s in steps if s["requested_deliveries_per_s"] == load), None)


def with_server_and_clients(
    ctx: Context,
    spec: ServerSpec,
    clients: Sequence[ClientSpec],
    title: str,
    body: Callable[[ServerProcess, GeneratorPool], dict],
    server_cores: tuple[int, ...] | None = None,
) -> dict:
    """Start ``spec``, log ``clients`` in, run ``body``, stop everything."""
    ctx.progress.show(
        f"{title}: starting {spec.label}, logging in {len(clients)} clients"
    )
    with (
        ServerProcess(spec, server_cores or ctx.server_cores) as server,
        GeneratorPool(
            server.port,
            clients,
            server.pid,
            ctx.generator_cores,
            workers=ctx.generator_workers,
        ) as pool,
    ):
        login = pool.login()
        if login["failed"]:
            raise RuntimeError(
                f"{title}: {login['failed']} of {len(clients)} "
                f"logins failed on {spec.label}: "
                f"{login['first_errors']}"
            )
        result = body(server, pool)
        result["login_seconds"] = login["seconds"]
        result["server"] = spec.label
        return result


def ladder_rows(scenario: str, runs: dict[str, dict], judged: bool) -> list[Row]:
    """Rows for a ladder on bare and (if run) chatroom, with the issue's
    targets when ``judged``."""
    bare = runs["bare"]
    real = next((run for label, run in runs.items() if label != "bare"), None)

    def figure(run: dict | None, load: int, key: str) -> float | None:
        step = step_at(run, load)
        return step[key] if step else None

    sustainable = ratio(
        real and real["sustainable_deliveries_per_s"],
        bare["sustainable_deliveries_per_s"],
    )
    # CPU per delivery falls as load rises (more lines per send() call), so
    # compare at one load: the highest that both servers sustained.
    common = max(
        (
            s["requested_deliveries_per_s"]
            for s in bare["steps"]
            if s["sustainable"]
            and (
                real is None
                or (
                    (step := step_at(real, s["requested_deliveries_per_s"]))
                    and step["sustainable"]
                )
            )
        ),
        default=MODERATE_DELIVERIES,
    )
    cpu_bare = figure(bare, common, "server_cpu_us_per_delivery")
    cpu_real = figure(real, common, "server_cpu_us_per_delivery")
    cpu_ratio = ratio(cpu_real, cpu_bare)
    p99_moderate = figure(real, MODERATE_DELIVERIES, "p99_ms")

    def judge(met: bool) -> str:
        return verdict(met if real else None) if judged else ""

    rows = [
        Row(
            scenario,
            "sustainable deliveries/s (p99<=100ms)",
            rate(bare["sustainable_deliveries_per_s"]),
            rate(real["sustainable_deliveries_per_s"]) if real else "-",
            number(sustainable),
            ">=0.7x bare" if judged else "",
            judge(bool(sustainable and sustainable >= 0.7)),
        ),
        Row(
            scenario,
            "  ladder ended by",
            bare["ended_by"],
            real["ended_by"] if real else "-",
        ),
        Row(
            scenario,
            "  other CPU meanwhile, max (cores; noise)",
            number(bare["max_other_cpu_share"]),
            number(real["max_other_cpu_share"]) if real else "-",
        ),
        Row(
            scenario,
            f"server CPU us/delivery @{rate(common)}/s",
            number(cpu_bare),
            number(cpu_real),
            number(cpu_ratio),
            "<=1.5x bare" if judged else "",
            judge(bool(cpu_ratio and cpu_ratio <= 1.5)),
        ),
    ]
    for load in (MODERATE_DELIVERIES, HIGH_DELIVERIES):
        cells = []
        for run in (bare, real):
            step = step_at(run, load)
            cells.append(
                "/".join(number(step[k], 1) for k in ("p50_ms", "p99_ms", "p999_ms"))
                if step
                else ("not reached" if run else "-")
            )
        target = load == MODERATE_DELIVERIES and judged
        rows.append(
            Row(
                scenario,
                f"p50/p99/p99.9 ms @{rate(load)}/s",
                *cells,
                "",
                "p99<20ms" if target else "",
                judge(p99_moderate is not None and p99_moderate < 20) if target else "",
            )
        )
    return rows
