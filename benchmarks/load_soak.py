"""The mock node under ``atoma-conformance load``: its capacity, and its memory over a long soak.

Two measurements, both benchmarks (run by hand, never in CI; their numbers go in the closing notes):

``capacity``
    The mock serves on loopback in a process of its own (``atoma-conformance mock``), and ``load
    --target`` drives it for ``--step`` seconds at each user count of ``--users`` (default 1,4,16,32).
    Per step: requests per second, p50/p99 of each endpoint, 5xx and other errors, findings, and the CPU
    seconds each side used (the mock from ``/proc/<pid>/stat``, the load engine from its own
    ``getrusage`` of children), so the table says which side was the bottleneck. The capacity figure is
    the best rate among the steps with no 5xx and no finding.
``soak``
    One ``load`` run of ``--duration`` (default 10 minutes) against the mock process, sampling the mock's
    RSS (``/proc/<pid>/status`` VmRSS) every second. The verdict is on the slope after a warm-up
    (``--warmup``, default 60 s): a least-squares fit of RSS against time, in MB per 10 minutes, next to
    the RSS at the end of the warm-up and at the end, the slope over the second half alone, and the RSS
    every 30 s. 5xx and findings must be 0. The mock's replay memory (``mock_node.replays``: two
    generations of 50,000 (key, nonce) pairs, at most ``REPLAY_MEMORY`` = 100,000 held) fills during the
    first minutes of a fast soak: the RSS climbs until its second generation is dropped, and must be flat
    after.

Run: ``python -m benchmarks.load_soak capacity --out F.json`` or ``python -m benchmarks.load_soak soak
--duration 600 --out F.json``. Linux only (``/proc``). Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "conformance.cli"]
MODEL = "meta-llama/Llama-3.3-70B-Instruct"
EMBEDDING_MODEL = "intfloat/multilingual-e5-large-instruct"
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Mock:
    """``atoma-conformance mock`` in a process of its own, on a free loopback port."""

    def __init__(self, profile: str = "strict") -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [*CLI, "mock", "--port", str(self.port), "--profile", profile],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("the mock did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _load(mock: Mock, users: int, seconds: float, report: Path) -> tuple[dict[str, Any], float]:
    """One load run against ``mock``; its ``load`` section and the engine's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [*CLI, "load", "--target", mock.url, "--api-key", "benchmark-token", "--model", MODEL]
    command += ["--embedding-model", EMBEDDING_MODEL, "--users", str(users), "--duration", f"{seconds}s"]
    command += ["--max-requests", "100000000", "--report-dir", str(report), "--quiet"]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"load exited {proc.returncode}: {proc.stderr[-500:]}")
    doc = json.loads((report / "results.json").read_text(encoding="utf-8"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return doc["load"], cpu


def _five_xx(load: dict[str, Any]) -> int:
    return sum(e["count"] for e in load["errors"] if e["class"] == "http-5xx")


def capacity(args: argparse.Namespace) -> dict[str, Any]:
    steps = []
    mock = Mock()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for users in args.users:
                cpu0 = mock.cpu_s()
                load, engine_cpu = _load(mock, users, args.step, Path(tmp) / f"u{users}")
                mock_cpu = mock.cpu_s() - cpu0
                step = {
                    "users": users,
                    "rps": load["rps"],
                    "exchanges_per_s": round(load["exchanges"] / load["elapsed_s"], 1),
                    "p50_ms": {e["name"]: e["p50_ms"] for e in load["endpoints"]},
                    "p99_ms": {e["name"]: e["p99_ms"] for e in load["endpoints"]},
                    "5xx": _five_xx(load),
                    "errors": sum(e["count"] for e in load["errors"]),
                    "findings": sum(f["count"] for f in load["findings"]),
                    "mock_cpu_share": round(mock_cpu / load["elapsed_s"], 2),
                    "engine_cpu_share": round(engine_cpu / load["elapsed_s"], 2),
                    "mock_rss_mb": round(mock.rss_mb(), 1),
                }
                steps.append(step)
                print(json.dumps(step), file=sys.stderr)
    finally:
        mock.close()
    clean = [s for s in steps if s["5xx"] == 0 and s["findings"] == 0]
    best = max(clean, key=lambda s: s["rps"], default=None)
    return {"kind": "capacity", "step_s": args.step, "steps": steps, "capacity_rps": best and best["rps"]}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    mock = Mock()
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append((time.monotonic() - started, mock.rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            load, engine_cpu = _load(mock, args.users, args.duration, Path(tmp) / "soak")
    finally:
        stop.set()
        sampler.join()
        mock.close()
    after = [(t, rss) for t, rss in samples if t >= args.warmup]
    slope = _slope(after) * 600 if len(after) > 2 else float("nan")
    late = [(t, rss) for t, rss in samples if t >= args.duration / 2]
    late_slope = _slope(late) * 600 if len(late) > 2 else float("nan")
    return {
        "kind": "soak",
        "duration_s": args.duration,
        "users": args.users,
        "requests": load["requests"],
        "rps": load["rps"],
        "p99_ms": {e["name"]: e["p99_ms"] for e in load["endpoints"]},
        "5xx": _five_xx(load),
        "findings": sum(f["count"] for f in load["findings"]),
        "rss_mb_start": round(samples[0][1], 1) if samples else None,
        "rss_mb_after_warmup": round(after[0][1], 1) if after else None,
        "rss_mb_end": round(samples[-1][1], 1) if samples else None,
        "rss_mb_max": round(max(r for _, r in samples), 1) if samples else None,
        "rss_slope_mb_per_10min": round(slope, 2),
        "rss_slope_second_half_mb_per_10min": round(late_slope, 2),
        "rss_every_30s": [round(rss, 1) for t, rss in samples[29::30]],
        "engine_cpu_s": round(engine_cpu, 1),
    }


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    num = sum((t - mean_t) * (r - mean_r) for t, r in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return num / den if den else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    cap = sub.add_parser("capacity")
    cap.add_argument("--users", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16, 32])
    cap.add_argument("--step", type=float, default=20.0)
    cap.add_argument("--out", type=Path)
    long = sub.add_parser("soak")
    long.add_argument("--duration", type=float, default=600.0)
    long.add_argument("--warmup", type=float, default=60.0)
    long.add_argument("--users", type=int, default=16)
    long.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = capacity(args) if args.kind == "capacity" else soak(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
