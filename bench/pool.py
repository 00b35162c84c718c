"""The harness side of the load generator: its worker processes and their
results, merged as if one generator had done the work."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence

from bench.generator import ClientSpec, WorkerPlan, worker_main

# A command that gets no answer in this long means the worker is stuck.
REPLY_TIMEOUT_S = 900.0


class GeneratorPool:
    """Generator processes sharing ``clients`` round-robin; every process is
    stopped on exit, errors and Ctrl-C included."""

    def __init__(
        self,
        port: int,
        clients: Sequence[ClientSpec],
        server_pid: int,
        cores: tuple[int, ...],
        workers: int = 1,
        connect_concurrency: int = 64,
        login_timeout_s: float = 300.0,
    ):
        self.clients = tuple(clients)
        self.workers = max(1, min(workers, len(self.clients)))
        self.plans = [
            WorkerPlan(
                port=port,
                clients=self.clients[w :: self.workers],
                server_pid=server_pid,
                cores=cores,
                connect_concurrency=connect_concurrency,
                login_timeout_s=login_timeout_s,
            )
            for w in range(self.workers)
        ]
        self.pipes: list = []
        self.processes: list = []

    def __enter__(self) -> GeneratorPool:
        # spawn: a clean interpreter, nothing inherited from the harness.
        context = multiprocessing.get_context("spawn")
        try:
            for plan in self.plans:
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=worker_main,
                    args=(theirs, plan),
                    daemon=True,
                    name="bench-generator",
                )
                process.start()
                theirs.close()
                self.pipes.append(ours)
                self.processes.append(process)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("quit", {}))
            except OSError:
                pass
        for process in self.processes:
            process.join(3)
            if process.is_alive():
                process.terminate()
                process.join(3)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self.pipes:
            pipe.close()
        self.pipes, self.processes = [], []

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    # -- commands -----------------------------------------------------------

    def send(self, name: str, per_worker: list[dict] | None = None, **params):
        for w, pipe in enumerate(self.pipes):
            pipe.send((name, per_worker[w] if per_worker else params))

    def receive(self) -> list[dict]:
        replies = []
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            if not pipe.poll(REPLY_TIMEOUT_S):
                raise RuntimeError(f"generator {process.pid} did not answer")
            replies.append(pipe.recv())
        return replies

    def login(self) -> dict:
        self.send("login")
        replies = self.receive()
        return {
            "clients": sum(r["clients"] for r in replies),
            "ready": sum(r["ready"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "first_errors": sorted({e for r in replies for e in r["first_errors"]}),
            "seconds": max(r["seconds"] for r in replies),
            "login_latencies_ns": [x for r in replies for x in r["login_latencies_ns"]],
        }

    def start_chat(self, msg_rate: float, **params: object) -> None:
        """Start a chat phase on every worker; ``finish_chat`` collects it."""
        shares = [sum(c.sender for c in plan.clients) for plan in self.plans]
        total = sum(shares) or 1
        self.send(
            "chat",
            [{**params, "msg_rate": msg_rate * share / total} for share in shares],
        )

    def stop_chat(self) -> None:
        self.send("stop")

    def finish_chat(self) -> dict:
        replies = self.receive()
        merged = {
            "window_s": replies[0]["window_s"],
            "server_cpu_s": replies[0]["server_cpu_s"],
            "machine_busy_s": replies[0]["machine_busy_s"],
            "sent_in_window": {},
            "latencies_ns": [],
            "last_error": next(
                (r["last_error"] for r in replies if r["last_error"]), ""
            ),
        }
        for key in (
            "window_lines",
            "window_bytes",
            "window_acks",
            "skipped",
            "throttled",
            "unacked",
            "errors",
            "generator_cpu_s",
            "lost_connections",
        ):
            merged[key] = sum(r[key] for r in replies)
        for w, reply in enumerate(replies):
            merged["latencies_ns"] += reply["latencies_ns"]
            for local, count in reply["sent_in_window"].items():
                merged["sent_in_window"][w + local * self.workers] = count
        return merged

    def chat(self, msg_rate: float, **params: object) -> dict:
        self.start_chat(msg_rate, **params)
        return self.finish_chat()

    def probe(self, line: str, count: int, timeout_s: float = 60.0) -> dict:
        """Time ``count`` request/reply round trips on the first client."""
        self.pipes[0].send(
            ("probe", {"line": line, "count": count, "timeout_s": timeout_s})
        )
        if not self.pipes[0].poll(timeout_s + 10):
            raise RuntimeError(f"generator {self.pids[0]} did not answer the probe")
        return self.pipes[0].recv()
