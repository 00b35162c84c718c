"""Readings from /proc and the statistics the report is made of."""

from __future__ import annotations

import math
import os
import platform
import resource

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        # The command name may hold spaces; the fields after it may not.
        fields = stat.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time all cores spent not idle since boot (/proc/stat): with the
    server's and generator's own, it shows how much else ran in a window."""
    with open("/proc/stat") as stat:
        fields = [int(field) for field in stat.readline().split()[1:]]
    idle, iowait = fields[3], fields[4]
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle - iowait) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def socket_memory() -> dict[str, int]:
    """TCP sockets in use and the kernel memory they hold (/proc/net/sockstat)."""
    with open("/proc/net/sockstat") as sockstat:
        for line in sockstat:
            if line.startswith("TCP:"):
                values = line.split()[1:]
                fields = dict(zip(values[::2], map(int, values[1::2]), strict=True))
                return {
                    "tcp_inuse": fields["inuse"],
                    "tcp_mem_bytes": fields["mem"] * PAGE_SIZE,
                }
    raise RuntimeError("no TCP line in /proc/net/sockstat")


# Kernel objects each TCP socket holds even when idle, which sockstat's "mem"
# (bytes queued in buffers) does not show.
SOCKET_SLABS = ("TCP", "sock_inode_cache")


def socket_slab_bytes() -> int | None:
    """Bytes of the slab caches in SOCKET_SLABS; None where /proc/slabinfo is
    not readable (it needs root)."""
    try:
        with open("/proc/slabinfo") as slabinfo:
            lines = slabinfo.readlines()[2:]
    except OSError:
        return None
    total = 0
    for line in lines:
        fields = line.split()
        if fields[0] in SOCKET_SLABS:
            total += int(fields[1]) * int(fields[3])  # active objects x size
    return total


def raise_open_files_limit(wanted: int) -> tuple[int, int]:
    """Raise the soft limit on open files towards ``wanted`` (up to the hard
    limit); children inherit it. Returns (soft, hard) now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft, hard


def percentiles(samples_ns: list[int], missing: int = 0) -> dict[str, float]:
    """p50/p99/p99.9 in milliseconds. ``missing`` samples (never delivered
    within the drain time) count as infinitely late, so loss shows as latency."""
    total = len(samples_ns) + missing
    if total == 0:
        return {"p50_ms": math.nan, "p99_ms": math.nan, "p999_ms": math.nan}
    ordered = sorted(samples_ns)

    def at(fraction: float) -> float:
        index = min(total - 1, math.ceil(fraction * total) - 1)
        return ordered[index] / 1e6 if index < len(ordered) else math.inf

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "p999_ms": at(0.999)}


def machine_description() -> dict[str, object]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        mem_kib = int(meminfo.readline().split()[1])
    return {
        "cpu_model": model,
        "cpus_usable": sorted(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }
