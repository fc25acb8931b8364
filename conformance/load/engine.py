"""The load engine: Locust, headless, in a process of its own (``python -m conformance.load.engine``).

Why a process of its own: Locust runs its users as gevent greenlets and monkey-patches ``socket``,
``ssl``, ``threading`` and ``time`` when it is imported. That must happen before anything else imports
them, and it must not happen in the parent, which serves the embedded mock node on an asyncio loop in a
thread. So ``atoma-conformance load`` validates its options, starts the mock, and runs this module with
a plan (a JSON file) and the secrets (an environment variable, never a file or an argument). The same
module is Locust's local runner, its master and its workers: ``--master`` and ``--worker`` map onto
Locust's own distributed mode, which we use as it is.

Each simulated user locks, seals, sends and opens through the reference client, and every answer is
judged by the rulebook (:mod:`conformance.load.judge`). A worker ships its findings and its nonces to
the master with each stats report (Locust's ``report_to_master``), and on the way out in a final message,
so the master's audit covers every message of every worker.
"""

# ruff: noqa: I001  (Locust first: it monkey-patches the standard library when it is imported)
from __future__ import annotations

import locust

import json
import logging
import os
import random
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from locust import User, constant, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, Runner, WorkerRunner

from ..budget import LocalBudget
from ..checks.judging import signer_problems
from ..checks.run import valid_plaintext
from ..client import BudgetExceeded, ClientOptions, ConfidentialClient
from ..fuzz.oracle import level_of
from ..records import ExchangeRecord, LockRecord
from ..textsafe import one_line
from .audit import NonceIndex, Tally, ingest
from .judge import FINGERPRINT, LoadJudge
from .measure import ErrorTally, error_class, percentile
from .plan import IMAGE_UNITS, KINDS, NO_MASTER, SECRETS_ENV, LoadPlan

HELLO = "atoma-hello"  # worker -> master: send me the plan
PLAN = "atoma-plan"  # master -> worker: the run's part of the plan
DRAIN = "atoma-drain"
FINAL = "atoma-final"
REPORT_KEY = "atoma"
SERIES_CAP = 100_000  # one point a second: more than a day
FINAL_WAIT_S = 15.0
STATS_INTERVAL_S = 1.0
PROFILE_ENV = "ATOMA_CONFORMANCE_LOAD_PROFILE"  # a file to write the engine's cProfile stats to


@dataclass
class Secrets:
    api_key: str | None
    headers: tuple[tuple[str, str], ...] = ()


class Process:
    """What every user of this process shares: the plan, the judge, the budget, the error classes."""

    def __init__(self, plan: LoadPlan, keys: Secrets) -> None:
        self.plan = plan
        self.keys = keys
        self.errors = ErrorTally()
        self.draining = False
        self.ready = plan.role != "worker"  # a worker waits for its master's part of the plan
        self.configure()

    def configure(self) -> None:
        """(Re)build what depends on the plan: a worker calls it again once its master sent the plan."""
        plan = self.plan
        if self.keys.api_key is None and plan.shared_api_key is not None:
            self.keys = Secrets(plan.shared_api_key, self.keys.headers)
        self.judge = LoadJudge(api_key=self.keys.api_key, expected_signer=plan.node_address)
        self.judge.nonces.shipping = plan.role == "worker"
        cap = plan.budget_share if plan.role == "worker" else plan.max_requests
        self.budget = LocalBudget(cap) if cap is not None else None
        self.options = ClientOptions(
            timeout_s=plan.timeout_s,
            deadline_s=plan.deadline_s,
            max_response_bytes=plan.max_response_bytes,
            budget=self.budget,
            verify=plan.verify,
            extra_headers=self.keys.headers,
        )
        kinds = [kind for kind, weight in plan.mix.items() if weight > 0]
        self.kinds, self.weights = kinds, [plan.mix[kind] for kind in kinds]

    def spent(self) -> bool:
        return self.budget is not None and self.budget.spent() >= self.budget.cap


def _bounded(kind: str, finding: str | None) -> str:
    return f"{kind} {finding.split(' ', 1)[0]}" if kind == "finding" and finding else kind


def user_class(process: Process) -> type[User]:
    """A Locust user whose one task draws a kind of exchange from the plan's mix (drawn at run time, so
    a worker can take its mix from the master), then locks, seals, sends, opens and judges it."""

    class ConfidentialUser(User):
        wait_time = constant(0)

        def on_start(self) -> None:
            self.client = ConfidentialClient(process.plan.target, process.keys.api_key, options=process.options)

        def on_stop(self) -> None:
            self.client.close()

        @task
        def exchange(self) -> None:
            if process.draining:
                raise StopUser
            if not process.ready:  # the master's plan has not come yet
                gevent.sleep(0.1)
                return
            kind = random.choices(process.kinds, process.weights)[0]  # noqa: S311 (a mix, not a secret)
            endpoint, stream = KINDS[kind]
            model = process.plan.model_for(endpoint)
            try:
                started = time.perf_counter()
                units = IMAGE_UNITS if endpoint == "images" else None
                lock = self.client.lock(model, max_num_tokens=units)
                self.report("lock", started, lock)
                if not process.judge.lock(lock):
                    return
                mark = f"atoma-conformance-sentinel-{secrets.token_hex(8)}"
                plaintext = valid_plaintext(endpoint, model, mark, stream=stream)
                started = time.perf_counter()
                record = self.client.send(
                    endpoint, plaintext, lock=lock, model_name=model, stream=stream, num_compute_units=units
                )
            except BudgetExceeded:
                raise StopUser from None
            except Exception as exc:  # a bug of ours or a client error: one line, never a traceback
                process.errors.add("internal", f"{type(exc).__name__}: {exc}")
                return
            findings = process.judge.exchange(record)
            reason = f"{findings[0].check_id} {findings[0].reason}" if findings else None
            self.report(kind, started, record, reason)

        def report(
            self, kind: str, started: float, record: LockRecord | ExchangeRecord, finding: str | None = None
        ) -> None:
            http = record.http
            failure = error_class(http.status, http.error, finding)
            if failure is not None:
                process.errors.add(*failure)
            self.environment.events.request.fire(
                request_type="POST",
                name=_NAMES[kind],
                response_time=(time.perf_counter() - started) * 1000,
                response_length=len(http.body or b""),
                # Locust keeps one error row per distinct message for the whole run: the message is the
                # class (and a finding's check id), never the detail, so that table stays small.
                exception=RuntimeError(_bounded(failure[0], finding)) if failure is not None else None,
                context={},
            )

    return ConfidentialUser


_NAMES = {
    "images": "images",
    "lock": "lock",
    "chat": "chat",
    "stream": "chat-stream",
    "completions": "completions",
    "embeddings": "embeddings",
}


# --- the master's (or the local runner's) view -----------------------------------------------------------


class Collector:
    """The run's merged audit and its time series, kept where the run is steered."""

    def __init__(self, plan: LoadPlan, runner: Runner, process: Process | None) -> None:
        self.plan = plan
        self.runner = runner
        self.process = process  # the local runner's own process; None on a master
        self.tally = process.judge.tally if process is not None else Tally()
        # A master's own index holds what each worker shipped: the nonces new to that worker.
        self.index = process.judge.index if process is not None else NonceIndex()
        self.errors = process.errors if process is not None else ErrorTally()
        self.fingerprint: dict[str, str | None] = process.judge.fingerprint if process is not None else {}
        self.cross_worker = 0
        self.unsent = 0
        self.series: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.final: set[str] = set()
        self.spent: dict[str, bool] = {}
        self._last = (0, 0, 0, dict[int, int]())

    def worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        wire = data.get(REPORT_KEY)
        if wire is None:
            return
        self.merge(client_id, wire)

    def merge(self, client_id: str, wire: dict[str, Any]) -> None:
        assert isinstance(self.runner, MasterRunner)
        origin = int(self.runner.get_worker_index(client_id))  # type: ignore[no-untyped-call]
        self.tally.merge(wire["tally"])
        self.errors.merge(wire["errors"])
        found = ingest(self.index, wire["nonces"], origin)
        self.cross_worker += found
        for _ in range(found):
            self.tally.finding("NONCE-004", f"worker {origin}: a nonce another worker saw under another key")
        self.unsent += int(wire.get("unsent", 0))
        for name, value in wire.get("fingerprint", {}).items():
            if self.fingerprint.get(name) is None and isinstance(value, str):
                self.fingerprint[name] = one_line(value, 120)
        self.spent[client_id] = bool(wire.get("spent"))

    def sample(self, *, final: bool = False) -> None:
        """One point of the time series: the requests, failures, findings and latency of the last second.
        The drain's point is kept only when it spans half a second or more: a sliver's percentiles would
        be a few requests' and read as a spike (the totals count every request either way)."""
        total = self.runner.stats.total
        findings = sum(self.tally.counts.values())
        histogram = dict(total.response_times)
        requests, failures, found, before = self._last
        window = {ms: n - before.get(ms, 0) for ms, n in histogram.items() if n > before.get(ms, 0)}
        now = time.monotonic() - self.started
        previous_t = self.series[-1]["t"] if self.series else 0.0
        span = max(now - previous_t, 1e-3)
        if final and span < 0.5:
            return
        point = {
            "t": round(now, 2),
            "users": self.runner.user_count,
            "rps": round((total.num_requests - requests) / span, 2),
            "p50_ms": percentile(window, 0.50),
            "p90_ms": percentile(window, 0.90),
            "p99_ms": percentile(window, 0.99),
            "errors": total.num_failures - failures,
            "findings": findings - found,
        }
        if len(self.series) < SERIES_CAP:
            self.series.append(point)
        self._last = (total.num_requests, total.num_failures, findings, histogram)

    def result(self, stopped_by: str, elapsed: float) -> dict[str, Any]:
        stats = self.runner.stats
        signers = sorted(self.tally.signers)
        for problem in signer_problems(signers, self.plan.node_address):  # across workers: the master's view
            if problem.check_id not in self.tally.counts:
                self.tally.finding(problem.check_id, f"across the run: {problem.reason}")
        endpoints: list[dict[str, Any]] = []
        for name in ("lock", "chat", "chat-stream", "completions", "embeddings", "images"):
            entry = stats.entries.get((name, "POST"))
            if entry is None or entry.num_requests == 0:
                continue
            endpoints.append(
                {
                    "name": name,
                    "requests": entry.num_requests,
                    "failures": entry.num_failures,
                    "rps": round(entry.num_requests / elapsed, 2) if elapsed > 0 else 0.0,
                    "p50_ms": float(entry.get_response_time_percentile(0.50) or 0),
                    "p90_ms": float(entry.get_response_time_percentile(0.90) or 0),
                    "p99_ms": float(entry.get_response_time_percentile(0.99) or 0),
                    "max_ms": round(float(entry.max_response_time or 0), 1),
                }
            )
        audit = self.index.totals()
        return {
            "mode": "distributed" if self.plan.role == "master" else "local",
            "workers": max(1, self.plan.expect_workers) if self.plan.role == "master" else 1,
            "users": self.plan.users,
            "spawn_rate": self.plan.spawn_rate,
            "duration_s": self.plan.duration_s,
            "elapsed_s": round(elapsed, 2),
            "mix": dict(self.plan.mix),
            "max_requests": self.plan.max_requests,
            "stopped_by": stopped_by,
            "requests": stats.total.num_requests,
            "exchanges": self.tally.exchanges,
            "cut_off": self.tally.cut_off,
            "refused_key": self.tally.refused_key,
            "shed": self.tally.shed,
            "rps": round(stats.total.num_requests / elapsed, 2) if elapsed > 0 else 0.0,
            "endpoints": endpoints,
            "errors": [
                {"class": kind, "count": count, "example": self.errors.examples.get(kind, "")}
                for kind, count in sorted(self.errors.counts.items())
            ],
            "findings": [
                {
                    "check_id": check_id,
                    "level": level_of(check_id),
                    "count": count,
                    "examples": self.tally.examples.get(check_id, []),
                }
                for check_id, count in sorted(self.tally.counts.items())
            ],
            "nonce_audit": {
                "messages": self.tally.node_nonces,
                "keys": self.tally.keys,
                "within_key_reuses": self.tally.within_key_reuses,
                "cross_key_repeats": self.tally.cross_key_repeats + self.cross_worker,
                "cross_worker_repeats": self.cross_worker,
                "index_capacity": audit["index_capacity"],
                "index_generations": audit["index_generations"],
            },
            "signers": {"distinct": self.tally.signers_seen, "addresses": signers},
            "series": self.series,
            "server_rss_mb": None,
            "fingerprint": {name: self.fingerprint.get(name) for name in FINGERPRINT},
            **({"nonces_not_shipped": self.unsent} if self.unsent else {}),
        }


# --- the run --------------------------------------------------------------------------------------------


def _worker_payload(process: Process, final: bool = False) -> dict[str, Any]:
    return {
        "tally": process.judge.tally.take(),
        "errors": process.errors.take(),
        "nonces": process.judge.nonces.drain(),
        "unsent": process.judge.nonces.unsent,
        "spent": process.spent(),
        "fingerprint": process.judge.fingerprint,
        "final": final,
    }


def run_worker(plan: LoadPlan, keys: Secrets) -> int:
    import locust.runners

    locust.runners.WORKER_REPORT_INTERVAL = STATS_INTERVAL_S  # the master's time series: a point a second
    # Locust retries the master for five minutes, silently; a worker of ours gives up after worker_wait_s.
    locust.runners.CONNECT_RETRY_COUNT = max(1, int(plan.worker_wait_s / locust.runners.CONNECT_TIMEOUT))
    process = Process(plan, keys)
    environment = Environment(user_classes=[user_class(process)], host=plan.target, events=locust.events)
    environment.stop_timeout = plan.deadline_s
    try:
        runner = environment.create_worker_runner(plan.master_host, plan.master_port)
    except ConnectionError:
        return NO_MASTER
    assert isinstance(runner, WorkerRunner)

    def adopt(environment: Environment, msg: Any, **_: Any) -> None:
        process.plan.adopt(msg.data)
        process.configure()
        process.ready = True

    def attach(client_id: str, data: dict[str, Any], **_: Any) -> None:
        if process.ready:
            data[REPORT_KEY] = _worker_payload(process)

    def drain(environment: Environment, msg: Any, **_: Any) -> None:
        process.draining = True
        runner.stop()  # waits for each user's exchange in flight, up to stop_timeout
        runner.send_message(FINAL, _worker_payload(process, final=True))

    runner.register_message(PLAN, adopt)
    runner.register_message(DRAIN, drain, concurrent=True)
    environment.events.report_to_master.add_listener(attach)  # type: ignore[no-untyped-call]
    runner.send_message(HELLO)
    gevent.signal_handler(signal.SIGTERM, runner.quit)
    runner.greenlet.join()
    return 0


def run_steering(plan: LoadPlan, keys: Secrets, result_path: Path) -> int:
    """The local runner, or the master of a distributed run: start, sample, stop, collect, write."""
    process = Process(plan, keys)
    environment = Environment(user_classes=[user_class(process)], host=plan.target, events=locust.events)
    environment.stop_timeout = plan.deadline_s
    runner: Runner
    if plan.role == "master":
        runner = environment.create_master_runner(plan.master_bind_host, plan.master_port)
    else:
        runner = environment.create_local_runner()
    local = process if plan.role == "local" else None
    collector = Collector(plan, runner, local)
    stop: dict[str, str] = {}
    planned: set[str] = set()

    if isinstance(runner, MasterRunner):
        master = runner

        def hello(environment: Environment, msg: Any, **_: Any) -> None:
            index = int(master.get_worker_index(msg.node_id))  # type: ignore[no-untyped-call]
            master.send_message(PLAN, plan.for_worker(index, plan.expect_workers), client_id=msg.node_id)
            planned.add(msg.node_id)

        def final(environment: Environment, msg: Any, **_: Any) -> None:
            collector.merge(msg.node_id, msg.data)
            collector.final.add(msg.node_id)

        master.register_message(HELLO, hello)
        master.register_message(FINAL, final)
        environment.events.worker_report.add_listener(collector.worker_report)  # type: ignore[no-untyped-call]

    gevent.signal_handler(signal.SIGTERM, lambda: stop.setdefault("why", "interrupted"))
    gevent.signal_handler(signal.SIGINT, lambda: stop.setdefault("why", "interrupted"))

    if isinstance(runner, MasterRunner):
        waited = time.monotonic()
        while len(runner.clients.ready) < plan.expect_workers or len(planned) < plan.expect_workers:
            if "why" in stop or time.monotonic() - waited > plan.worker_wait_s:
                connected = len(runner.clients.ready)
                why = f"{connected} of {plan.expect_workers} workers connected within {plan.worker_wait_s:.0f} s"
                _write(result_path, {"error": why, "field": "--expect-workers"})
                runner.quit()
                return 2
            gevent.sleep(0.1)

    started = time.monotonic()
    collector.started = started
    runner.start(plan.users, spawn_rate=plan.spawn_rate)
    progress = _Progress(plan.progress)
    last = started
    while "why" not in stop:
        gevent.sleep(max(0.0, 1.0 - (time.monotonic() - last)))
        last = time.monotonic()
        collector.sample()
        progress.show(collector, last - started)
        elapsed = last - started
        if plan.duration_s is not None and elapsed >= plan.duration_s:
            stop["why"] = "duration"
        elif plan.max_requests is not None and _budget_spent(collector, local):
            stop["why"] = "max-requests"
        elif elapsed >= plan.run_deadline_s:
            stop["why"] = "run-deadline"
    stopped_by = stop["why"]

    # Drain: no new exchange starts; those in flight finish (within the exchange deadline) and are judged.
    if local is not None:
        local.draining = True
        runner.stop()
    else:
        master.send_message(DRAIN)
        waited = time.monotonic()
        while len(collector.final) < plan.expect_workers and time.monotonic() - waited < plan.deadline_s + FINAL_WAIT_S:
            gevent.sleep(0.1)
    elapsed = time.monotonic() - started
    if local is None:
        gevent.sleep(STATS_INTERVAL_S + 0.5)  # the workers' last Locust stats report, after their drain
    collector.sample(final=True)
    result = collector.result(stopped_by, elapsed)
    if local is None and len(collector.final) < plan.expect_workers:
        result["workers_unreported"] = plan.expect_workers - len(collector.final)
    runner.quit()
    _write(result_path, result)
    return 0


def _budget_spent(collector: Collector, process: Process | None) -> bool:
    if process is not None:
        return process.spent()
    return len(collector.spent) >= collector.plan.expect_workers and all(collector.spent.values())


class _Progress:
    """A line on stderr every few seconds (the parent decides whether there is one at all)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = 0.0

    def show(self, collector: Collector, elapsed: float) -> None:
        if not self.enabled or elapsed - self.shown < 5.0:
            return
        self.shown = elapsed
        total = collector.runner.stats.total
        point = collector.series[-1] if collector.series else {}
        p99 = point.get("p99_ms")
        findings = sum(collector.tally.counts.values())
        sys.stderr.write(
            f"load: {elapsed:.0f} s, {total.num_requests} requests, {point.get('rps', 0):.0f} rps, "
            f"p99 {'n/a' if p99 is None else f'{p99:.0f} ms'}, {total.num_failures} failed, {findings} findings\n"
        )
        sys.stderr.flush()


def _write(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def _secrets() -> Secrets:
    raw = json.loads(os.environ.pop(SECRETS_ENV, "{}") or "{}")
    return Secrets(raw.get("api_key"), tuple((str(k), str(v)) for k, v in raw.get("headers", [])))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m conformance.load.engine PLAN.json (started by 'atoma-conformance load')\n")
        return 2
    plan = LoadPlan.read(Path(args[0]))
    logging.basicConfig(level=logging.ERROR if not plan.verbose else logging.INFO)
    keys = _secrets()
    profile = os.environ.pop(PROFILE_ENV, None)  # a developer's view of where the engine's time goes
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        try:
            return profiler.runcall(_run, plan, keys)
        finally:
            profiler.dump_stats(profile)
    return _run(plan, keys)


def _run(plan: LoadPlan, keys: Secrets) -> int:
    if plan.role == "worker":
        return run_worker(plan, keys)
    return run_steering(plan, keys, Path(plan.result_path))


if __name__ == "__main__":
    sys.exit(main())
