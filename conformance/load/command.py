"""``atoma-conformance load``: conformance under load, every answer judged.

The command is the steering half. It refuses bad options (exit 2, one line), starts the embedded mock
when there is no ``--target`` (in this process, on loopback, measuring its memory as it serves), runs
the preflight against a deployment, and starts the Locust engine (:mod:`conformance.load.engine`) as a
child process with a plan file and the secrets in its environment. When the engine is done it turns the
engine's result into ``results.json`` (a ``load`` section, no check results), the HTML report with its
plots, and a summary on stderr. Exit codes keep the contract: 0 no MUST finding, 1 a MUST finding, 2 not
run (bad usage, an unusable target, nothing judged), 130 interrupted.

Distributed runs use Locust's master and workers as they are: ``--master --expect-workers N`` steers
and reports, ``--worker --master-host H`` generates load and takes the run's plan from the master.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..exits import ExitCode, UserError
from ..options import display_url, positive_int, validate_api_key
from ..targetopts import add_tls_arguments, client_options_from
from ..textsafe import one_line
from .plan import DEFAULT_MIX, NO_MASTER, SECRETS_ENV, LoadPlan, parse_mix

DEFAULT_DURATION_S = 30.0
TARGET_MAX_REQUESTS = 2_000  # a deployment is paid compute: a load run is capped unless told otherwise
RESULT_MAX_BYTES = 64 * 1024 * 1024
ENGINE_GRACE_S = 60.0  # past the run's own deadline and drain, the engine is killed


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    from ..fuzz.command import duration

    target = parser.add_argument_group("target")
    target.add_argument("--target", metavar="URL", help="deployment to load (default: the embedded mock node)")
    target.add_argument(
        "--api-key", metavar="KEY", help="bearer token (default: $ATOMA_API_KEY, $ATOMASDK_BEARER_AUTH)"
    )
    target.add_argument("--model", metavar="NAME", help="chat/completions model (required with --target)")
    target.add_argument("--embedding-model", metavar="NAME", help="embeddings model (else embeddings weigh 0)")
    target.add_argument("--image-model", metavar="NAME", help="image model, for an images weight in --mix")
    target.add_argument("--node-address", metavar="0x…", help="the node's registered Sui signer address")
    target.add_argument(
        "--mock-profile", choices=["strict", "atoma-node-compat"], default="strict", help="the embedded mock's profile"
    )
    target.add_argument(
        "--mock-fault", action="append", default=[], metavar="NAME", help="run the embedded mock with this fault"
    )
    add_tls_arguments(parser)
    shape = parser.add_argument_group("load")
    shape.add_argument("--users", type=positive_int, default=10, metavar="N", help="simulated users (default 10)")
    shape.add_argument("--spawn-rate", type=_rate, metavar="R", help="users started per second (default: all at once)")
    shape.add_argument(
        "--duration", type=duration, metavar="TIME", help=f"how long, e.g. 60s or 10m (default {DEFAULT_DURATION_S:g}s)"
    )
    shape.add_argument(
        "--mix",
        metavar="KIND=W,…",
        help="weights of chat, stream, completions, embeddings, images (default "
        + ",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items() if v)
        + "; a kind whose model a --target lacks weighs 0)",
    )
    shape.add_argument(
        "--max-requests",
        type=positive_int,
        metavar="N",
        help=f"hard cap on HTTP requests, locks included, across every worker (default with --target: "
        f"{TARGET_MAX_REQUESTS})",
    )
    shape.add_argument("--report-dir", default="reports", metavar="DIR", help="results.json and reports go here")
    dist = parser.add_argument_group("distributed (Locust's master and workers)")
    role = dist.add_mutually_exclusive_group()
    role.add_argument("--master", action="store_true", help="steer workers and report; generate no load here")
    role.add_argument("--worker", action="store_true", help="generate load for the master at --master-host")
    dist.add_argument("--expect-workers", type=positive_int, default=1, metavar="N", help="workers to wait for")
    dist.add_argument("--master-host", default="127.0.0.1", metavar="HOST", help="the master (workers)")
    dist.add_argument(
        "--master-bind-host", default="127.0.0.1", metavar="HOST", help="the interface the master listens on"
    )
    dist.add_argument("--master-port", type=_port, default=5557, metavar="PORT", help="the master's port (5557)")
    dist.add_argument(
        "--worker-wait",
        type=duration,
        default=60.0,
        metavar="TIME",
        help="how long a master waits for its workers, and a worker for its master (default 60s)",
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    shown.add_argument("--progress", action="store_true", help="progress lines on stderr even when not a terminal")


def _rate(text: str) -> float:
    from ..fuzz.command import _rate as rate

    return rate(text)


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("must be a TCP port, 1 to 65535")
    return value


def _api_key(args: argparse.Namespace) -> str | None:
    from ..fuzz.command import _api_key as api_key

    return api_key(args)


def check_arguments(args: argparse.Namespace) -> dict[str, int]:
    """Everything that can be refused before anything starts; the parsed mix."""
    if args.api_key is not None:
        validate_api_key(args.api_key, "--api-key")
    if args.worker:
        for flag in ("target", "model", "embedding_model", "image_model", "node_address", "duration", "max_requests"):
            if getattr(args, flag) is not None:
                option = "--" + flag.replace("_", "-")
                raise UserError(option, "a worker takes the run's plan from its master: give it to the master")
        if args.mock_fault:
            raise UserError("--mock-fault", "a worker takes the run's plan from its master: give it to the master")
        _api_key(args)
        return dict(DEFAULT_MIX)
    from ..fuzz.command import check_target_arguments

    check_target_arguments(args)
    embedded = args.target is None
    embeddings = embedded or args.embedding_model is not None
    images = embedded or args.image_model is not None
    if args.mix is None:  # the default: a kind the target has no model for is left out, not an error
        mix = dict(DEFAULT_MIX)
        mix["embeddings"] *= embeddings
        mix["images"] *= images
        return mix
    return parse_mix(args.mix, embeddings=embeddings, images=images)


def _engine_available() -> None:
    import importlib.util

    if importlib.util.find_spec("locust") is None:
        raise UserError("load", "needs Locust, which is not installed: pip install 'atoma-conformance[load]'")


def run_load(args: argparse.Namespace) -> int:
    mix = check_arguments(args)
    _engine_available()
    options = client_options_from(args)
    if args.worker:
        plan = LoadPlan(
            role="worker",
            target="",
            chat_model="",
            embedding_model=None,
            users=1,
            spawn_rate=1.0,
            duration_s=None,
            max_requests=None,
            verify=options.verify,
            master_host=args.master_host,
            master_port=args.master_port,
            verbose=False,
            worker_wait_s=args.worker_wait,
        )
        where = f"{one_line(args.master_host, 100)}:{args.master_port}"
        print(f"load: worker: waiting for the master at {where}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="atoma-load-") as tmp:
            code = _engine(plan, Path(tmp), _secrets(_api_key(args), options.extra_headers), None, hard_limit=None)
        if code == NO_MASTER:
            raise UserError("--master-host", f"no master answered at {where} within {plan.worker_wait_s:.0f} s")
        print("load: worker done", file=sys.stderr)
        return ExitCode.OK if code == 0 else ExitCode.NOT_RUN
    report_dir = Path(args.report_dir)
    with _target(args) as (url, api_key, (chat_model, embedding_model, image_model), node_address, target_info):
        duration_s = args.duration if args.duration is not None else DEFAULT_DURATION_S
        max_requests = args.max_requests
        if args.target and max_requests is None:
            max_requests = TARGET_MAX_REQUESTS
        if not embedding_model:
            mix["embeddings"] = 0
        plan = LoadPlan(
            role="master" if args.master else "local",
            target=url,
            chat_model=chat_model,
            embedding_model=embedding_model,
            image_model=image_model,
            users=args.users,
            spawn_rate=args.spawn_rate or float(args.users),
            duration_s=duration_s,
            max_requests=max_requests,
            mix=mix,
            node_address=node_address,
            timeout_s=options.timeout_s,
            deadline_s=options.deadline_s,
            max_response_bytes=options.max_response_bytes,
            verify=options.verify,
            run_deadline_s=duration_s + options.deadline_s,
            progress=_progress(args, duration_s),
            expect_workers=args.expect_workers if args.master else 0,
            master_bind_host=args.master_bind_host,
            master_port=args.master_port,
            worker_wait_s=args.worker_wait,
            shared_api_key=api_key if args.target is None else None,
        )
        rss: list[dict[str, float]] | None = [] if args.target is None else None
        started = time.time()
        hard_limit = duration_s + 2 * options.deadline_s + plan.worker_wait_s + ENGINE_GRACE_S
        with tempfile.TemporaryDirectory(prefix="atoma-load-") as tmp:
            plan.result_path = str(Path(tmp) / "result.json")
            secrets_ = _secrets(api_key, options.extra_headers)
            code = _engine(plan, Path(tmp), secrets_, rss, hard_limit=hard_limit)
            load = _read_result(Path(plan.result_path), code)
    load["server_rss_mb"] = rss
    return _report(load, target_info, started, args, report_dir)


@contextlib.contextmanager
def _target(
    args: argparse.Namespace,
) -> Iterator[tuple[str, str | None, tuple[str, str | None, str | None], str | None, dict[str, Any]]]:
    """The target's URL, key, models and expected signer, and what results.json says of it."""
    from ..results import redact_url

    if args.target:
        options = client_options_from(args)
        from ..preflight import ProxyProbe, check_proxy

        api_key = _api_key(args)
        check_proxy(ProxyProbe(args.target, api_key, args.model, _preflight_options(options)))
        info = {"url": redact_url(args.target), "embedded": False, "profile": None, "model": args.model}
        info["node_address"] = args.node_address
        models = (args.model, args.embedding_model, args.image_model)
        yield args.target, api_key, models, args.node_address, info
        return
    from ..embedded import embedded_target

    try:
        with embedded_target(args.mock_profile, args.mock_fault, node_address=args.node_address) as embedded:
            t = embedded.target
            info = {
                "url": t.base_url,
                "embedded": True,
                "profile": args.mock_profile,
                "model": t.chat_model,
                "node_address": t.node_address,
            }
            yield t.base_url, t.api_key, (t.chat_model, t.embedding_model, t.image_model), t.node_address, info
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _preflight_options(options: Any) -> Any:
    import dataclasses

    return dataclasses.replace(options, timeout_s=min(options.timeout_s, 10.0), deadline_s=20.0, lock_retries=0)


def _progress(args: argparse.Namespace, duration_s: float) -> bool:
    if args.quiet:
        return False
    return bool(args.progress) or sys.stderr.isatty() or duration_s >= 60


def _secrets(api_key: str | None, headers: tuple[tuple[str, str], ...]) -> str:
    return json.dumps({"api_key": api_key, "headers": [list(h) for h in headers]})


def _engine(
    plan: LoadPlan, directory: Path, secrets_: str, rss: list[dict[str, float]] | None, *, hard_limit: float | None
) -> int:
    """Run the engine to its end; sample this process's memory (the embedded mock's) once a second."""
    plan_path = directory / "plan.json"
    plan.write(plan_path)
    env = dict(os.environ)
    env[SECRETS_ENV] = secrets_
    env.setdefault("PYTHONUNBUFFERED", "1")
    child = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "conformance.load.engine", str(plan_path)], env=env, stdin=subprocess.DEVNULL
    )
    started = time.monotonic()
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(rss, stop), daemon=True) if rss is not None else None
    if sampler is not None:
        sampler.start()
    try:
        while True:
            try:
                return child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if hard_limit is not None and time.monotonic() - started > hard_limit:
                    child.kill()
                    child.wait()
                    raise UserError(
                        "load", f"the engine did not finish within {hard_limit:.0f} s and was stopped"
                    ) from None
    except KeyboardInterrupt:
        child.send_signal(signal.SIGTERM)  # the engine drains, judges what is in flight, and writes
        try:
            child.wait(timeout=plan.deadline_s + 10)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            child.kill()
            child.wait()
            raise
        return child.returncode
    finally:
        stop.set()
        if sampler is not None:
            sampler.join(timeout=2)


def _sample_rss(out: list[dict[str, float]], stop: threading.Event) -> None:
    started = time.monotonic()
    while not stop.wait(1.0):
        mb = _rss_mb()
        if mb is not None and len(out) < 100_000:
            out.append({"t": round(time.monotonic() - started, 2), "rss_mb": mb})


def _rss_mb() -> float | None:
    """This process's resident memory (the embedded mock serves from it), from /proc where there is one."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def _read_result(path: Path, code: int) -> dict[str, Any]:
    from ..paths import existing_file

    if not path.exists():
        raise UserError("load", f"the engine stopped (exit {code}) before it wrote a result")
    existing_file(str(path), "the engine's result", RESULT_MAX_BYTES)
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if "error" in doc:
        raise UserError(one_line(str(doc.get("field", "load")), 40), one_line(str(doc["error"]), 200))
    return doc


def _report(
    load: dict[str, Any], target: dict[str, Any], started: float, args: argparse.Namespace, report_dir: Path
) -> int:
    from ..report.render import write_all
    from ..results import Results

    fingerprint = load.pop("fingerprint")
    target = dict(target, **fingerprint, detected_profile=detected_profile(load))
    options = {
        "target": target["url"] if not target["embedded"] else None,
        "model": target["model"],
        "embedding_model": getattr(args, "embedding_model", None),
        "profile": target["profile"],
        "mock_fault": list(args.mock_fault),
        "face": "proxy",
        "users": args.users,
        "spawn_rate": load["spawn_rate"],
        "duration": load["duration_s"],
        "mix": load["mix"],
        "max_requests": load["max_requests"],
        "master": bool(args.master),
    }
    results = Results(target, [], {}, started, load["elapsed_s"], load["requests"], options, load=load)
    results_path = report_dir / "results.json"
    results.write(results_path)
    written = write_all(json.loads(results_path.read_text(encoding="utf-8")), report_dir)
    print(summary(load, target), file=sys.stderr)
    print("Reports: " + ", ".join(str(p) for p in [results_path, *written.values()]), file=sys.stderr)
    if load["stopped_by"] == "interrupted":
        return ExitCode.INTERRUPTED
    if load["exchanges"] == 0:
        why = (
            f"the target refused the API key on {load['refused_key']} lock(s) (401/403)"
            if load.get("refused_key")
            else "see the errors above"
        )
        print(f"atoma-conformance: error: load: no exchange was judged ({why})", file=sys.stderr)
        return ExitCode.NOT_RUN
    return ExitCode.FAILED if any(f["level"] == "MUST" for f in load["findings"]) else ExitCode.OK


def detected_profile(load: dict[str, Any]) -> str:
    """The profile the target behaved like under load (reported, never assumed): the upstream node's one
    nonce per stream is the only finding the compat profile shows to a load run (ERR-017, which ``run``
    also expects of it, needs a refusal probe that a load run does not send)."""
    failed = {f["check_id"] for f in load["findings"]}
    if not failed:
        return "strict"
    return "atoma-node-compat" if failed == {"NONCE-003"} else "non-conformant"


def summary(load: dict[str, Any], target: dict[str, Any]) -> str:
    """The terminal summary: throughput, latency per endpoint, errors, findings, the nonce audit."""
    where = (
        "embedded mock, " + str(target.get("profile")) if target.get("embedded") else display_url(str(target["url"]))
    )
    lines = [
        f"load against {where}: {load['requests']} requests ({load['exchanges']} exchanges judged) in "
        f"{load['elapsed_s']:.1f} s, {load['rps']:.1f} rps, {load['users']} users"
        + (f" on {load['workers']} workers" if load["mode"] == "distributed" else "")
        + f"; stopped by {load['stopped_by']}"
    ]
    for e in load["endpoints"]:
        lines.append(
            f"  {e['name']:<12} {e['requests']:>7} requests {e['failures']:>5} failed  p50 {e['p50_ms']:.0f} ms  "
            f"p90 {e['p90_ms']:.0f} ms  p99 {e['p99_ms']:.0f} ms  max {e['max_ms']:.0f} ms"
        )
    for e in load["errors"]:
        lines.append(f"  errors: {e['class']} x{e['count']} (e.g. {one_line(e['example'], 120)})")
    audit = load["nonce_audit"]
    lines.append(
        f"nonce audit: {audit['messages']} node nonces under {audit['keys']} keys; {audit['within_key_reuses']} "
        f"reused within a key, {audit['cross_key_repeats']} repeated across keys"
        + (f" ({audit['cross_worker_repeats']} across workers)" if load["mode"] == "distributed" else "")
        + f"; index of {audit['index_capacity']} slots, {audit['index_generations']} generation(s)"
    )
    if load["cut_off"]:
        lines.append(f"{load['cut_off']} answer(s) cut off (a timeout, the deadline or a cap): not judged")
    if not load["findings"]:
        lines.append(f"no finding in {load['exchanges']} judged exchanges")
    for f in load["findings"]:
        example = one_line(f["examples"][0], 200) if f["examples"] else ""
        lines.append(f"FINDING {f['check_id']} [{f['level']}] x{f['count']}: {example}")
    return "\n".join(lines)


def main_load(args: argparse.Namespace) -> int:
    from ..fuzz.command import _main

    return _main(run_load, args)
