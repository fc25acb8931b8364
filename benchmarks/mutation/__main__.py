"""Mutation testing of the strict node path: how many small bugs in the node does the suite notice?

    python -m benchmarks.mutation                 # every mutant (about 25 minutes on 2 cores)
    python -m benchmarks.mutation --only mock_node/locks.py --limit 20
    python -m benchmarks.mutation report          # re-render the tables from the last raw results

``tox -e mutation`` runs the first form. Outputs: ``results.md`` (mutants, killed, survived, timeouts and
score per file) and ``survivors.md`` (every survivor with its triage from :mod:`.triage`) beside this
file; the per-mutant records go to ``--raw`` (JSON lines, not committed). A benchmark, not a CI step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from . import report, runner, scope
from .operators import Mutant, list_mutants

HERE = Path(__file__).resolve().parent
DEFAULT_RAW = Path(tempfile.gettempdir()) / "atoma-mutation" / "results.jsonl"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=("run", "report"), default="run")
    parser.add_argument("--workers", type=int, default=2, help="parallel mutants (each is two processes)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant before it counts as a hang")
    parser.add_argument("--only", action="append", default=[], help="mutate only this file (repeatable)")
    parser.add_argument("--limit", type=int, default=0, help="run only every k-th mutant so that about N run")
    parser.add_argument("--baseline-runs", type=int, default=3, help="clean runs that decide which checks are stable")
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW, help="per-mutant records, JSON lines")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.md and survivors.md go")
    return parser


def _mutants(only: list[str], source: Path) -> list[Mutant]:
    targets = scope.targets()
    unknown = set(only) - set(targets)
    if unknown:
        raise SystemExit(f"--only: {sorted(unknown)[0]!r} is not a mutated file; choose from {', '.join(targets)}")
    out: list[Mutant] = []
    for file, names in targets.items():
        if not only or file in only:
            out.extend(list_mutants(file, (source / file).read_bytes(), names))
    return out


def _baseline(base: Path, runs: int) -> tuple[runner.Outcomes, dict[str, list[str]], dict[str, list[int]]]:
    """The clean outcomes, the checks whose outcome is not stable across clean runs, and covered lines."""
    scratch = base / "clean"
    runner.make_scratch(scratch, source=base / "source")
    coverage_file = base / "coverage.json"
    first = runner.run_suite(scratch, coverage_out=coverage_file, timeout=300)
    if first.status != "ran":
        raise SystemExit(f"the clean mock did not run: {first.status} ({first.detail})")
    unstable: dict[str, set[str]] = {}
    for _ in range(max(0, runs - 1)):
        again = runner.run_suite(scratch, timeout=300)
        for name, check, _, _ in runner.compare(first.outcomes, again.outcomes):
            unstable.setdefault(name, set()).add(check)
    bad = {
        f"{n}/{c}": o for n, checks in first.outcomes.items() for c, o in checks.items() if o not in ("pass", "skip")
    }
    if bad:
        raise SystemExit(f"the clean mock does not pass the suite: {bad}")
    covered: dict[str, list[int]] = json.loads(coverage_file.read_text())
    return first.outcomes, {k: sorted(v) for k, v in unstable.items()}, covered


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="atoma-mutation-"))
    try:
        # One snapshot of the tree for the whole run: others may edit it meanwhile.
        runner.make_scratch(base / "source")
        mutants = _mutants(args.only, base / "source")
        if args.limit and len(mutants) > args.limit:
            mutants = mutants[:: -(-len(mutants) // args.limit)]
        print(f"{len(mutants)} mutants; scratch copies under {base}", file=sys.stderr)
        files = {f: hashlib.sha256((base / "source" / f).read_bytes()).hexdigest()[:12] for f in scope.targets()}
        baseline, unstable, covered = _baseline(base, args.baseline_runs)
        if unstable:
            print(f"unstable checks, left out of the comparison: {unstable}", file=sys.stderr)
        args.raw.parent.mkdir(parents=True, exist_ok=True)
        records: list[dict[str, Any]] = []
        context = multiprocessing.get_context("spawn")
        with (
            args.raw.open("w") as raw,
            ProcessPoolExecutor(
                args.workers, mp_context=context, initializer=runner.init_worker, initargs=(str(base),)
            ) as pool,
        ):
            futures = [pool.submit(runner.run_mutant, m, baseline, unstable, args.timeout) for m in mutants]
            for done, future in enumerate(as_completed(futures), 1):
                record = future.result()
                record["reached"] = record["statement_line"] in set(covered.get(record["file"], ()))
                records.append(record)
                raw.write(json.dumps(record) + "\n")
                raw.flush()
                if done % 50 == 0 or done == len(futures):
                    elapsed = time.monotonic() - started
                    print(f"{done}/{len(futures)} mutants, {elapsed:.0f} s", file=sys.stderr)
        # Keep the snapshot the line numbers refer to, for triage after the scratch copies are gone.
        kept = args.raw.parent / "source"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(base / "source", kept, ignore=shutil.ignore_patterns("__pycache__"))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    meta = {
        "seconds": round(time.monotonic() - started),
        "workers": args.workers,
        "timeout": args.timeout,
        "unstable": unstable,
        "sampled": bool(args.limit),
        "files": files,
    }
    args.raw.with_suffix(".meta.json").write_text(json.dumps(meta))
    report.write(records, meta, args.out)
    print(report.summary(records), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        if not args.raw.is_file():
            raise SystemExit(f"--raw: {args.raw} is not a file; run the mutants first")
        records = [json.loads(line) for line in args.raw.read_text().splitlines() if line.strip()]
        meta_path = args.raw.with_suffix(".meta.json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        report.write(records, meta, args.out)
        print(report.summary(records), file=sys.stderr)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
