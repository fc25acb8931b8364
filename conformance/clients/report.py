"""The client matrix as results.json, Markdown and HTML: checks down, clients across.

The JSON keeps, per client, the same check-result shape as the node suite's results.json (id, level,
category, title, spec, outcome, reason, evidence), so the tools that read one can read the other.
Like every report here it holds outcomes, error codes, counts and fingerprints, never content, keys
or API tokens (content only with ``--keep-plaintext``).
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..paths import atomic_target, write_atomic
from ..report.render import _md
from .checks import BY_ID, described
from .runner import Matrix

CLIENT_RESULTS_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
_MARK = {"pass": "✅ pass", "fail": "❌ FAIL", "error": "⚠️ error", "skip": "– skip"}


def to_json(matrix: Matrix) -> dict[str, Any]:
    return {
        "client_results_version": CLIENT_RESULTS_VERSION,
        "suite_version": __version__,
        "started": matrix.started,
        "duration_s": round(matrix.duration_s, 3),
        "node_address": matrix.node_address,
        "verdict": "pass" if matrix.passed else "fail",
        "clients": [
            {
                "name": r.client.name,
                "client": r.version,
                "tested": r.tested,
                "unavailable": r.client.unavailable,
                "setup_error": r.client.setup_error,
                "certification": r.certification(),
                "checks": [vars(c) for c in r.checks],
            }
            for r in matrix.clients
        ],
    }


def _what(check_id: str) -> str:
    return described(check_id) or "judge: every request"


def markdown(doc: dict[str, Any]) -> str:
    clients = doc["clients"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(doc["started"]))
    out = [
        "# Client conformance matrix",
        "",
        f"`atoma-conformance clients` {doc['suite_version']} with adapters "
        + ", ".join(f"`{_md(c['name'])}`" for c in clients)
        + f", {when}, {doc['duration_s']:.1f} s. Each row is a CLIENT "
        "check of [docs/checks.md](checks.md#client-checks); MUST on a scenario means the client refuses a "
        "forged or tampered response (or, for a control, accepts an honest one with exactly the served content).",
        "",
        "| client | reports as | MUST | SHOULD |",
        "|---|---|---|---|",
    ]
    for c in clients:
        if not c["tested"]:
            out.append(f"| {_md(c['name'])} | – | skipped: {_md(c['unavailable'])} | |")
            continue
        cert = c["certification"]
        out.append(
            f"| {_md(c['name'])} | {_md(c['client'] or '?')} | {_MARK[cert['MUST']]} | {_MARK[cert['SHOULD']]} |"
        )
    out += ["", "| check | level | what | " + " | ".join(_md(c["name"]) for c in clients) + " |"]
    out.append("|---|---|---|" + "---|" * len(clients))
    by_client = [{r["id"]: r for r in c["checks"]} for c in clients]
    for check_id in sorted(BY_ID, key=lambda i: int(i.split("-")[1])):
        check = BY_ID[check_id]
        cells = [_MARK[results[check_id]["outcome"]] if check_id in results else "" for results in by_client]
        out.append(
            f"| {check_id} {_md(check.title)} | {check.level} | {_md(_what(check_id))} | " + " | ".join(cells) + " |"
        )
    out += ["", "## What each client gets wrong", ""]
    for c in clients:
        bad = [r for r in c["checks"] if r["outcome"] in ("fail", "error") and r["level"] != "INFO"]
        info = [r for r in c["checks"] if r["outcome"] == "fail" and r["level"] == "INFO"]
        out.append(f"### {_md(c['name'])}")
        out.append("")
        if not c["tested"]:
            out += [f"Not tested: {_md(c['unavailable'])}", ""]
            continue
        if not bad:
            out.append("Passes every MUST and SHOULD check.")
        for r in bad:
            out.append(f"- **{r['id']}** ({r['level']}, {', '.join(r['spec'])}) {_md(r['title'])}: {_md(r['reason'])}")
        for r in info:
            out.append(f"- {r['id']} (INFO) {_md(r['title'])}: {_md(r['reason'])}")
        out.append("")
    return "\n".join(out)


def html_page(doc: dict[str, Any]) -> str:
    e = html.escape
    clients = doc["clients"]
    head = "".join(f"<th>{e(c['name'])}<br><small>{e(c['client'] or '')}</small></th>" for c in clients)
    rows = []
    by_client = [{r["id"]: r for r in c["checks"]} for c in clients]
    for check_id in sorted(BY_ID, key=lambda i: int(i.split("-")[1])):
        check = BY_ID[check_id]
        cells = []
        for results in by_client:
            r = results.get(check_id)
            if r is None:
                cells.append("<td></td>")
            else:
                cells.append(f'<td class="{e(r["outcome"])}" title="{e(r["reason"])}">{e(_MARK[r["outcome"]])}</td>')
        rows.append(
            f"<tr><td>{e(check_id)}</td><td>{e(check.level)}</td><td>{e(check.title)}</td>"
            f"<td>{e(_what(check_id))}</td>{''.join(cells)}</tr>"
        )
    verdicts = "".join(
        f"<li>{e(c['name'])}: "
        + (f"skipped ({e(c['unavailable'])})" if not c["tested"] else
           f"MUST {e(c['certification']['MUST'])}, SHOULD {e(c['certification']['SHOULD'])}")
        + "</li>"
        for c in clients
    )  # fmt: skip
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.pass{background:#e6ffed}"
        ".fail{background:#ffeef0}.error{background:#fff5b1}.skip{color:#666}"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Client conformance matrix</title>'
        f"<style>{style}</style></head><body><h1>Client conformance matrix</h1><ul>{verdicts}</ul>"
        f"<table><thead><tr><th>check</th><th>level</th><th>title</th><th>scenario</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )


FIELD = "--report-dir"


def write(matrix: Matrix, directory: Path) -> dict[str, Path]:
    doc = to_json(matrix)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "results.json", "markdown": directory / "matrix.md", "html": directory / "matrix.html"}
    # Atomic, and never through a link planted at a report's name (a UserError naming --report-dir).
    for path in paths.values():
        atomic_target(path, FIELD)  # every destination checked before any is written
    write_atomic(paths["json"], (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), FIELD)
    write_atomic(paths["markdown"], (markdown(doc) + "\n").encode("utf-8"), FIELD)
    write_atomic(paths["html"], html_page(doc).encode("utf-8"), FIELD)
    return paths
