"""A load ladder: offered deliveries/s raised step by step, each step measured
and judged sustainable or not, and the table rows that compare two ladders."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.generator import ClientSpec
from bench.measure import percentiles
from bench.plan import HIGH_DELIVERIES, MODERATE_DELIVERIES, Context
from bench.pool import GeneratorPool
from bench.report import Row, number, rate, ratio, verdict
from bench.servers import BARE, COALESCING, ServerProcess, ServerSpec, is_baseline

P99_LIMIT_MS = 100.0  # a load step with a higher p99 is not sustainable
# A step that fails while other processes took this much CPU (in cores) is
# run again (Sizes.disturbed_attempts): on a shared machine a neighbour's burst
# is not our limit.
DISTURBED_SHARE = 0.25
# A generator this busy (a share of the cores it may use) is at its own
# receive ceiling: past it, a ladder measures the generator, not the server.
GENERATOR_SATURATED = 0.9


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
            step["generator_saturated"] = (
                step["generator_cpu_share"]
                >= GENERATOR_SATURATED * ctx.generator_capacity
            )
            if step["sustainable"] or step["other_cpu_share"] < DISTURBED_SHARE:
                break
        steps.append(step)
        if not server.alive():
            ended_by = "server died"
            break
        if (
            not step["sustainable"]
            or step["generator_saturated"]
            or step["generator_limited"]
        ):
            ended_by = why_ended(step)
            break
    good = [s for s in steps if s["sustainable"]]
    last = steps[-1] if steps else {}
    return {
        "steps": steps,
        "ended_by": ended_by,
        # Its sustainable rate is the generator's limit, or the ladder's: a
        # lower bound.
        "generator_bound": bool(
            last.get("generator_saturated")
            or (last.get("sustainable") and last.get("generator_limited"))
            or ended_by == "top of the ladder"
        ),
        "sustainable_deliveries_per_s": max(
            (s["delivered_per_s"] for s in good), default=0.0
        ),
        "max_other_cpu_share": max((s["other_cpu_share"] for s in steps), default=0),
    }


def why_ended(step: dict) -> str:
    at = rate(step["requested_deliveries_per_s"])
    if step["generator_saturated"]:
        return (
            f"generator at its receive ceiling at {at} "
            f"({step['generator_cpu_share']:.2f} cores busy): a lower bound"
        )
    if step["sustainable"]:
        return f"generator could not offer {at}/s"
    p99 = step["p99_ms"]
    return (
        f"at {at}: p99 "
        + (f"{p99:.1f} ms" if math.isfinite(p99) else ">1% undelivered")
        + f", delivered {rate(step['delivered_per_s'])}/s"
        + (f", {step['last_error']}" if step["last_error"] else "")
    )


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
    data_dir: str | None = None,
) -> dict:
    """Start ``spec``, log ``clients`` in, run ``body``, stop everything
    (``data_dir``: the server's, kept after it stopped; a fresh one if None)."""
    ctx.progress.show(
        f"{title}: starting {spec.label}, logging in {len(clients)} clients"
    )
    with (
        ServerProcess(
            spec, server_cores or ctx.server_cores, data_dir=data_dir
        ) as server,
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


@dataclass(frozen=True)
class Targets:
    """What issue 12 asks of one ladder, against the plain bare forwarder of
    the same run; ``None`` or ``False``: not judged here."""

    sustainable_x: float | None = None  # sustainable deliveries/s, >= x bare
    cpu_x: float | None = None  # CPU per delivery, <= x bare
    paced: bool = False  # at the moderate load: p50 and p99 against bare's
    coalescing_aim: float | None = None  # shown beside the target, not judged


NO_TARGETS = Targets()
FANOUT_TARGETS = Targets(sustainable_x=2.0, cpu_x=0.5, paced=True, coalescing_aim=0.5)
MATCH_BARE = Targets(sustainable_x=1.0)
PACED_P50_MARGIN_MS = 2.0  # paced p50 at most bare's plus this
PACED_P99_X = 1.5  # paced p99 at most this times bare's


def ladder_rows(scenario: str, runs: dict[str, dict], targets: Targets) -> list[Row]:
    """Rows comparing the ladders of the plain bare forwarder, the coalescing
    one (if run) and chatroom (if run), judged against ``targets``."""
    bare, coal = runs[BARE], runs.get(COALESCING)
    real = next((run for label, run in runs.items() if not is_baseline(label)), None)

    def figure(run: dict | None, load: int, key: str) -> float | None:
        step = step_at(run, load)
        return step[key] if step else None

    def judge(wanted: object, met: bool) -> str:
        return (verdict(met) if real else "n/a") if wanted else ""

    def sustained(run: dict | None) -> str:
        if run is None:
            return "-"
        figure = rate(run["sustainable_deliveries_per_s"])
        return (">=" + figure) if run["generator_bound"] else figure

    def per_run(cell: Callable[[dict | None], str]) -> dict[str, str]:
        return {
            "bare": cell(bare),
            "chatroom": cell(real) if real else "-",
            "coalescing": cell(coal) if coal else "",
        }

    def ratios(key: str, load: int | None = None) -> dict[str, str]:
        def value(run: dict | None) -> float | None:
            if run is None:
                return None
            return run[key] if load is None else figure(run, load, key)

        return {
            "ratio": number(ratio(value(real), value(bare))),
            "vs_coalescing": number(ratio(value(real), value(coal))) if coal else "",
        }

    sustainable = ratio(
        real and real["sustainable_deliveries_per_s"],
        bare["sustainable_deliveries_per_s"],
    )
    # CPU per delivery falls as load rises (more lines per send() call), so
    # compare at one load: the highest that plain bare and chatroom sustained.
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
    cpu_ratio = ratio(
        figure(real, common, "server_cpu_us_per_delivery"),
        figure(bare, common, "server_cpu_us_per_delivery"),
    )
    sustainable_target = ""
    if targets.sustainable_x:
        sustainable_target = f">={targets.sustainable_x:g}x bare"
        if targets.coalescing_aim and coal:
            sustainable_target += f" (aim {targets.coalescing_aim:g}x coal.)"
    rows = [
        Row(
            scenario,
            "sustainable deliveries/s (p99<=100ms)",
            **per_run(sustained),
            **ratios("sustainable_deliveries_per_s"),
            target=sustainable_target,
            verdict=judge(
                targets.sustainable_x,
                bool(sustainable and sustainable >= (targets.sustainable_x or 0)),
            ),
        ),
        Row(
            scenario,
            "  ladder ended by",
            **per_run(lambda run: run["ended_by"]),
        ),
        Row(
            scenario,
            "  other CPU meanwhile, max (cores; noise)",
            **per_run(lambda run: number(run["max_other_cpu_share"])),
        ),
        Row(
            scenario,
            f"server CPU us/delivery @{rate(common)}/s",
            **per_run(
                lambda run: number(figure(run, common, "server_cpu_us_per_delivery"))
            ),
            **ratios("server_cpu_us_per_delivery", common),
            target=f"<={targets.cpu_x:g}x bare" if targets.cpu_x else "",
            verdict=judge(
                targets.cpu_x, bool(cpu_ratio and cpu_ratio <= (targets.cpu_x or 0))
            ),
        ),
    ]
    for load in (MODERATE_DELIVERIES, HIGH_DELIVERIES):

        def latencies(run: dict | None, load: int = load) -> str:
            step = step_at(run, load)
            if not step:
                return "not reached"
            return "/".join(number(step[k], 1) for k in ("p50_ms", "p99_ms", "p999_ms"))

        paced = targets.paced and load == MODERATE_DELIVERIES
        rows.append(
            Row(
                scenario,
                f"p50/p99/p99.9 ms @{rate(load)}/s",
                **per_run(latencies),
                target=(
                    f"p50<=bare+{PACED_P50_MARGIN_MS:g}ms, p99<={PACED_P99_X:g}x bare"
                    if paced
                    else ""
                ),
                verdict=judge(paced, paced_met(bare, real, load)),
            )
        )
    return rows


def paced_met(bare: dict, real: dict | None, load: int) -> bool:
    """p50 within a margin of bare's and p99 within a factor of it, at one load."""
    ours, theirs = step_at(real, load), step_at(bare, load)
    if not ours or not theirs:
        return False
    return (
        ours["p50_ms"] <= theirs["p50_ms"] + PACED_P50_MARGIN_MS
        and ours["p99_ms"] <= PACED_P99_X * theirs["p99_ms"]
    )
