"""A load run's ``load`` object (``atoma-conformance load``, issue 17) as the ``#load`` section of
report.html, a block of summary.md, and the verdict both lead with.

Why inline SVG drawn here: report.html runs under a Content-Security-Policy of ``default-src 'none'``
with one hashed ``<style>`` and one hashed ``<script>``, and is read offline from a CI artefact. A chart
library would be a script the policy refuses, an ``<img>`` could only be a data: URL, and a
``style="…"`` attribute is refused too; an inline ``<svg>`` drawn with presentation attributes
(``stroke``, ``fill``, ``font-size``, ``stroke-dasharray``) is allowed, needs nothing beside the page,
and prints. No string of the document ever goes into an SVG (only numbers and our own labels), so each
plot stays well-formed XML whatever the document holds. Lines differ by colour (Okabe-Ito, safe for
colour-blind readers) and by dash pattern, so they stay apart on a black-and-white printout.

Why every value is checked: a report is re-rendered from a results.json someone hands us. A string
where a number belongs, NaN, infinity, a negative count, a missing member or a million-point series
shows as "n/a" or is left out, never raises, and the section stays within a few hundred kilobytes:
strings are capped (control characters escaped) and HTML-escaped, tables stop at the schema's caps and
at byte budgets, and at most :data:`MAX_SERIES_POINTS` points are read.

Downsampling: a line has at most :data:`MAX_PLOT_POINTS` points whatever the run's length (a 5 s run
draws its 5 points, a 1 h run 600 buckets of 6 s). Within a bucket, requests per second is the mean, so
the line keeps the run's throughput; users, the latency percentiles, errors, findings and RSS are the
maximum, so one slow or failing second still shows as a spike instead of being averaged away.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..textsafe import one_line

__all__ = ["NOT_RUN", "load_section", "markdown_block", "verdict"]

NOT_RUN = "NOT RUN"
LEVELS = ("MUST", "SHOULD", "INFO")
MIX_KEYS = ("chat", "stream", "completions", "embeddings")
NONCE_TOTALS = (
    ("messages", "Messages audited"),
    ("keys", "Keys"),
    ("within_key_reuses", "(key, nonce) reuses under one key"),
    ("cross_key_repeats", "Nonces repeated across keys"),
    ("cross_worker_repeats", "Nonces repeated across workers"),
    ("index_capacity", "Index capacity"),
    ("index_generations", "Index generations"),
)
ALARMING = ("within_key_reuses", "cross_key_repeats", "cross_worker_repeats")
NUM, MUST_ROW, REUSE = ' class="num"', ' class="load-must"', ' class="reuse"'

MAX_PLOT_POINTS = 600
MAX_SERIES_POINTS = 100_000
"""The schema's cap on ``series`` and ``server_rss_mb``: points past it are not read (and the page says so)."""
MAX_ENDPOINTS, MAX_ERRORS, MAX_FINDINGS, MAX_EXAMPLES, MAX_SIGNERS = 16, 64, 256, 5, 16
NAME_CHARS, ERROR_EXAMPLE_CHARS, EXAMPLE_CHARS, ADDRESS_CHARS = 64, 200, 300, 100
TABLE_BUDGET = 100 * 1024
"""Bytes of rows per table (errors, findings): five examples of 300 escaped characters in 256 rows
would otherwise be megabytes."""
MD_BUDGET = 120 * 1024
MAX_NUMBER = 1e15
"""Larger numbers are not a count or a duration any run produces: shown as n/a, so that neither a
309-digit float nor an int too long for ``str`` reaches the page."""


# --- reading values ------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A finite, non-negative number (every quantity of the load object is one), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return float(value) if 0 <= value <= MAX_NUMBER else None
    return value if math.isfinite(value) and 0 <= value <= MAX_NUMBER else None


def _count(value: Any) -> int | None:
    """A non-negative int; a float, even integral, is not a count."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_NUMBER else None


def _records(value: Any, limit: int) -> tuple[list[Mapping[str, Any]], int]:
    """The objects among the first ``limit`` items of a list, and how many items were past the limit."""
    if not isinstance(value, list):
        return [], 0
    return [v for v in value[:limit] if isinstance(v, Mapping)], max(0, len(value) - limit)


def _member(load: Any, key: str) -> Any:
    return load.get(key) if isinstance(load, Mapping) else None


# --- formatting ----------------------------------------------------------------------------------------


def _fmt_count(value: Any) -> str:
    count = _count(value)
    return "n/a" if count is None else str(count)


def _fmt_number(value: Any, digits: int = 1) -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    return f"{number:.3g}" if number >= 1e9 else f"{number:.{digits}f}"


def _ms(value: Any) -> str:
    """Milliseconds to a precision that matters: 0.42, 7.3, 1234."""
    number = _number(value)
    if number is None or number >= 1e9:
        return _fmt_number(value)
    return f"{number:.2f}" if number < 1 else f"{number:.1f}" if number < 100 else f"{number:.0f}"


def _plain(value: Any, limit: int) -> str:
    """A string member on one line, capped, control characters escaped; anything else "n/a"."""
    return one_line(value, limit) if isinstance(value, str) else "n/a"


def _h(value: Any, limit: int) -> str:
    return html.escape(_plain(value, limit), quote=True)


# --- the verdict ---------------------------------------------------------------------------------------


def verdict(load: Any, *, certified: bool = True) -> tuple[bool, str, str]:
    """(passed, PASS/FAIL/NOT RUN, why) of a load run, whose checks list is empty by design.

    Why not certification's verdict: with no checks, "every MUST check passed" would be true of any load
    run, however many MUST findings its answers drew. A load run fails on a MUST finding (or on a stored
    certification that says a MUST failed), and a run that judged nothing has not passed anything: NOT
    RUN, the name of exit code 2. A damaged record (findings that are not a list, a finding of no known
    level, no readable exchange count) is NOT RUN too, never a PASS."""
    if not isinstance(load, Mapping):
        return False, NOT_RUN, "nothing was judged: the load record in results.json is unreadable"
    exchanges = _count(load.get("exchanges"))
    judged = f"{exchanges} judged exchange(s)" if exchanges is not None else "an unknown number of exchanges"
    raw = load.get("findings")
    findings, _ = _records(raw, len(raw) if isinstance(raw, list) else 0)
    must = [f for f in findings if f.get("level") == "MUST"]
    if must:
        total = sum(_count(f.get("count")) or 0 for f in must)
        ids = ", ".join(_plain(f.get("check_id"), 40) for f in must[:10]) + (" …" if len(must) > 10 else "")
        return False, "FAIL", f"{total} MUST finding(s) under load ({ids}) in {judged}"
    if not certified:
        return False, "FAIL", "the run's stored certification records a MUST failure"
    unreadable = (
        not isinstance(raw, list) or len(findings) < len(raw) or any(f.get("level") not in LEVELS for f in findings)
    )
    if unreadable:
        return False, NOT_RUN, "nothing can be concluded: the load record's findings are unreadable"
    if exchanges is None:
        return False, NOT_RUN, "nothing was judged: the load record gives no readable count of judged exchanges"
    if exchanges == 0:
        sent, cut = _fmt_count(load.get("requests")), _fmt_count(load.get("cut_off"))
        why = f"no confidential exchange was answered in full ({sent} request(s) sent, {cut} answer(s) cut off)"
        return False, NOT_RUN, f"nothing was judged: {why}"
    return True, "PASS", f"no MUST finding in {exchanges} judged exchanges" + _lesser(findings, load)


def _lesser(findings: Sequence[Mapping[str, Any]], load: Mapping[str, Any]) -> str:
    """What a passing load run still found: SHOULD and INFO findings, answers cut off unjudged."""
    parts = []
    for level in ("SHOULD", "INFO"):
        total = sum(_count(f.get("count")) or 0 for f in findings if f.get("level") == level)
        if total:
            parts.append(f"{total} {level} finding(s)")
    cut = _count(load.get("cut_off"))
    if cut:
        parts.append(f"{cut} answer(s) cut off and not judged")
    return f"; {', '.join(parts)}" if parts else ""


# --- the time series -----------------------------------------------------------------------------------

Point = tuple[float, float | None]
Reduce = Callable[[list[float]], float]


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _timeline(value: Any) -> tuple[list[tuple[float, Mapping[str, Any]]], int]:
    """The points with a usable ``t``, in time order, and how many points were past the read cap."""
    records, dropped = _records(value, MAX_SERIES_POINTS)
    points = [(t, r) for r in records if (t := _number(r.get("t"))) is not None]
    points.sort(key=lambda point: point[0])
    return points, dropped


def _buckets(length: int) -> list[range]:
    size = max(1, math.ceil(length / MAX_PLOT_POINTS))
    return [range(start, min(start + size, length)) for start in range(0, length, size)]


def _downsample(timeline: Sequence[tuple[float, Mapping[str, Any]]], key: str, reduce: Reduce) -> list[Point]:
    """One (t, value) per bucket, t its midpoint; None where no point of the bucket had a value (a gap)."""
    out: list[Point] = []
    for bucket in _buckets(len(timeline)):
        values = [v for i in bucket if (v := _number(timeline[i][1].get(key))) is not None]
        middle = (timeline[bucket[0]][0] + timeline[bucket[-1]][0]) / 2
        out.append((middle, reduce(values) if values else None))
    return out


# --- SVG plots -----------------------------------------------------------------------------------------

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 64, 34, 44
INK, GRID, FRAME = "#1f2328", "#d8dee4", "#6e7781"
BLUE, VERMILLION, GREEN, ORANGE, PURPLE = "#0072b2", "#d55e00", "#009e73", "#e69f00", "#cc79a7"
SOLID, DASHED, DOTTED = "", "7 4", "2 3"
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    dash: str
    points: Sequence[Point]
    right: bool = False  # drawn against the right-hand axis


@dataclass(frozen=True)
class Plot:
    pid: str
    title: str
    summary: str
    left_label: str
    lines: Sequence[Line]
    right_label: str = ""


def _nice_step(top: float, ticks: int = 5) -> float:
    raw = top / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _axis(values: Iterable[float | None]) -> tuple[float, float]:
    """(top, step) of a y axis from 0 that holds every value, in round steps."""
    high = max((v for v in values if v is not None), default=0.0)
    step = _nice_step(max(high, 1.0))
    return max(step, math.ceil(high / step) * step), step


def _time_axis(end: float) -> float:
    return next((s for s in TIME_STEPS if end / s <= 8), _nice_step(end, 8))


def _clock(seconds: float, end: float) -> str:
    """Tick labels a reader takes in at a glance: "30 s" for a short run, "12:30" or "1:05:00" for a long one."""
    if end < 120:
        return f"{seconds:g} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if end >= 3600 else f"{rest // 60}:{rest % 60:02d}"


def _tick(value: float) -> str:
    return f"{value:.4g}"


def _text(x: float, y: float, label: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" fill="{INK}"{extra}>'
        f"{html.escape(label)}</text>"
    )


def _segments(points: Sequence[Point], sx: Callable[[float], float], sy: Callable[[float], float]) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    for t, value in points:
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(f"{sx(t):.1f} {sy(value):.1f}")
    return [s for s in segments if s]


def _line(line: Line, sx: Callable[[float], float], sy: Callable[[float], float]) -> str:
    """A path per unbroken run of points, and a dot for a point alone between gaps (a path of one point
    draws nothing)."""
    segments = _segments(line.points, sx, sy)
    dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
    paths = " ".join("M" + " L".join(s) for s in segments if len(s) > 1)
    out = (
        f'<path d="{paths}" fill="none" stroke="{line.colour}" stroke-width="1.8" stroke-linejoin="round"{dash}/>'
        if paths
        else ""
    )
    for segment in segments:
        if len(segment) == 1:
            x, y = segment[0].split()
            out += f'<circle cx="{x}" cy="{y}" r="2.5" fill="{line.colour}"/>'
    return out


def _legend(lines: Sequence[Line]) -> str:
    parts, x = [], float(LEFT)
    for line in lines:
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        parts.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x + 26:.1f}" y2="14" stroke="{line.colour}" stroke-width="2.5"{dash}/>'
            + _text(x + 31, 18, line.label, "start")
        )
        x += 44 + 6.5 * len(line.label)
    return "<g>" + "".join(parts) + "</g>"


def _grid(top: float, step: float, end: float, right_top: float | None) -> str:
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{width}" height="{height}" fill="#ffffff" stroke="{FRAME}"/>']
    ticks = round(top / step)
    for i in range(ticks + 1):
        y = TOP + height - i * height / ticks
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + width}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(_text(LEFT - 6, y + 4, _tick(i * step), "end"))
        if right_top is not None:
            out.append(_text(LEFT + width + 6, y + 4, _tick(i * right_top / ticks), "start"))
    t_step = _time_axis(end)
    for i in range(int(end // t_step) + 1):
        x = LEFT + i * t_step / end * width
        out.append(f'<line x1="{x:.1f}" y1="{TOP + height}" x2="{x:.1f}" y2="{TOP + height + 5}" stroke="{FRAME}"/>')
        out.append(_text(x, TOP + height + 18, _clock(i * t_step, end)))
    return "".join(out)


def _labels(plot: Plot, end: float) -> str:
    middle = TOP + (HEIGHT - TOP - BOTTOM) / 2
    unit = "s" if end < 120 else "h:mm:ss" if end >= 3600 else "m:ss"
    out = _text((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 6, f"time since the start ({unit})")
    out += _text(16, middle, plot.left_label, extra=f' transform="rotate(-90 16 {middle:.1f})"')
    if plot.right_label:
        x = WIDTH - 14
        out += _text(x, middle, plot.right_label, extra=f' transform="rotate(90 {x} {middle:.1f})"')
    return out


def _svg(plot: Plot, end: float) -> str:
    """One plot: frame, grid, ticks on both axes, axis titles, a legend, and the lines; ``role="img"``
    with a label that states what a sighted reader would read off it."""
    end = max(end, 1.0)
    left = [ln for ln in plot.lines if not ln.right]
    right = [ln for ln in plot.lines if ln.right]
    top, step = _axis(v for ln in left for _, v in ln.points)
    # The right axis shares the left's gridlines: a round step per gridline, its top the step times their count.
    right_high = max((v for ln in right for _, v in ln.points if v is not None), default=0.0)
    right_top = _nice_step(max(right_high, 1.0), round(top / step)) * round(top / step) if right else 1.0
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(t: float) -> float:
        return LEFT + min(t, end) / end * width

    def scale(axis_top: float) -> Callable[[float], float]:
        return lambda v: TOP + height - min(v, axis_top) / axis_top * height

    drawn = "".join(_line(ln, sx, scale(right_top if ln.right else top)) for ln in plot.lines)
    label = html.escape(f"{plot.title}: {plot.summary}", quote=True)
    return (
        f'<svg class="plot" id="{plot.pid}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{label}"><title>{html.escape(plot.title)}</title>'
        f"<desc>{html.escape(plot.summary)}</desc>"
        + _grid(top, step, end, right_top if right else None)
        + _labels(plot, end)
        + drawn
        + _legend(plot.lines)
        + "</svg>"
    )


def _peak(points: Sequence[Point]) -> float | None:
    return max((v for _, v in points if v is not None), default=None)


def _figure(plot: Plot, end: float, caption: str) -> str:
    return f'<figure class="plot">{_svg(plot, end)}<figcaption>{html.escape(caption)}</figcaption></figure>'


Timeline = Sequence[tuple[float, Mapping[str, Any]]]


def _reduced(how: str, timeline: Timeline) -> str:
    """A legend's note of how a bucket was reduced, only when the line was downsampled at all."""
    return f" ({how})" if len(_buckets(len(timeline))) < len(timeline) else ""


def _throughput_plot(timeline: Timeline) -> Plot:
    rps = _downsample(timeline, "rps", _mean)
    users = _downsample(timeline, "users", max)
    return Plot(
        "load-plot-rps",
        "Requests per second and users",
        f"peak {_fmt_number(_peak(rps))} requests per second, up to {_fmt_number(_peak(users), 0)} users",
        "requests per second",
        (
            Line("req/s" + _reduced("mean", timeline), BLUE, SOLID, rps),
            Line("users" + _reduced("max", timeline) + ", right axis", VERMILLION, DASHED, users, True),
        ),
        "users",
    )


def _latency_plot(timeline: Timeline) -> Plot:
    styles = {"p50": (GREEN, SOLID), "p90": (ORANGE, DASHED), "p99": (VERMILLION, DOTTED)}
    lines = {name: _downsample(timeline, f"{name}_ms", max) for name in styles}
    return Plot(
        "load-plot-latency",
        "Latency percentiles (ms)",
        f"p99 at most {_ms(_peak(lines['p99']))} ms, p50 at most {_ms(_peak(lines['p50']))} ms",
        "milliseconds",
        tuple(Line(name + _reduced("max", timeline), *styles[name], points) for name, points in lines.items()),
    )


def _failure_plot(timeline: Timeline) -> Plot:
    errors = _downsample(timeline, "errors", max)
    findings = _downsample(timeline, "findings", max)
    return Plot(
        "load-plot-errors",
        "Errors and findings per second",
        f"at most {_fmt_number(_peak(errors), 0)} error(s) and {_fmt_number(_peak(findings), 0)} finding(s) a second",
        "per second",
        (
            Line("errors" + _reduced("max", timeline), VERMILLION, SOLID, errors),
            Line("findings" + _reduced("max", timeline), PURPLE, DASHED, findings),
        ),
    )


def _series_plots(load: Mapping[str, Any]) -> str:
    timeline, dropped = _timeline(load.get("series"))
    if not timeline:
        return '<p class="empty">No time series recorded (n/a): nothing to plot.</p>'
    buckets = len(_buckets(len(timeline)))
    how = f"{len(timeline)} one-second point(s)" + (f" drawn as {buckets} buckets" if buckets < len(timeline) else "")
    note = f"; {dropped} point(s) past the first {MAX_SERIES_POINTS} are not plotted" if dropped else ""
    caption = (
        f"{how}{note}. Within a bucket: mean of req/s, maximum of users, percentiles, errors and findings. "
        "Gaps: seconds in which no request completed."
    )
    plots = (_throughput_plot(timeline), _latency_plot(timeline), _failure_plot(timeline))
    return "".join(_figure(p, timeline[-1][0], caption) for p in plots)


def _rss_plot(load: Mapping[str, Any]) -> str:
    raw = load.get("server_rss_mb")
    if raw is None:
        return (
            '<p class="small">Server memory: not measured (the load ran against a --target, not the embedded mock).</p>'
        )
    timeline, dropped = _timeline(raw)
    if not timeline:
        return '<p class="empty">Server memory: no readable sample (n/a).</p>'
    rss = _downsample(timeline, "rss_mb", max)
    plot = Plot(
        "load-plot-rss",
        "Embedded mock's resident memory (MB)",
        f"at most {_fmt_number(_peak(rss))} MB",
        "MB resident",
        (Line("RSS MB" + _reduced("max", timeline), BLUE, SOLID, rss),),
    )
    note = f"; {dropped} sample(s) past the first {MAX_SERIES_POINTS} are not plotted" if dropped else ""
    return _figure(plot, timeline[-1][0], f"{len(timeline)} sample(s){note}; maximum within a bucket.")


# --- the section ---------------------------------------------------------------------------------------


def _headline(load: Mapping[str, Any]) -> str:
    asked = load.get("duration_s")
    asked_text = "no duration asked" if asked is None else f"{_fmt_number(asked)} s asked"
    cap = load.get("max_requests")
    cap_text = "" if cap is None else f" · at most {_fmt_count(cap)} requests"
    return (
        f'<p class="load-headline"><b>{_fmt_count(load.get("requests"))}</b> requests, '
        f"<b>{_fmt_count(load.get('exchanges'))}</b> judged exchanges, {_fmt_count(load.get('cut_off'))} cut off "
        f"(not judged) · <b>{_fmt_number(load.get('rps'))}</b> req/s over {_fmt_number(load.get('elapsed_s'))} s "
        f"({asked_text}) · {_fmt_count(load.get('users'))} users at {_fmt_number(load.get('spawn_rate'))}/s · "
        f"{_fmt_count(load.get('workers'))} worker(s), {_h(load.get('mode'), 20)}{cap_text} · stopped by "
        f"<b>{_h(load.get('stopped_by'), 40)}</b></p>"
        f'<p class="small">Mix: {_mix(load.get("mix"))}</p>'
    )


def _mix(mix: Any) -> str:
    if not isinstance(mix, Mapping):
        return "n/a"
    return " · ".join(f"{key} {_fmt_count(mix[key])}" for key in MIX_KEYS if key in mix) or "n/a"


def _within(rows: Iterable[str], total: int, budget: int, columns: int, what: str) -> str:
    """The rows that fit in ``budget`` bytes, then one saying how many more results.json holds."""
    shown, used = [], 0
    for row in rows:
        used += len(row.encode("utf-8"))
        if used > budget:
            break
        shown.append(row)
    if len(shown) < total:
        shown.append(
            f'<tr class="omitted"><td colspan="{columns}" class="empty">{total - len(shown)} more {what} in '
            "results.json, not shown here</td></tr>"
        )
    return "".join(shown)


def _table(tid: str, head: Sequence[str], numeric: set[int], body: str) -> str:
    cells = "".join(f"<th{NUM if i in numeric else ''}>{h}</th>" for i, h in enumerate(head))
    return f'<table id="{tid}"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'


def _endpoints(load: Mapping[str, Any]) -> str:
    records, more = _records(load.get("endpoints"), MAX_ENDPOINTS)
    if not records:
        return '<p class="empty">No endpoint statistics recorded (n/a).</p>'
    rows = [
        f'<tr data-endpoint="{_h(e.get("name"), NAME_CHARS)}"><td><code>{_h(e.get("name"), NAME_CHARS)}</code></td>'
        f'<td class="num">{_fmt_count(e.get("requests"))}</td><td class="num">{_fmt_count(e.get("failures"))}</td>'
        f'<td class="num">{_fmt_number(e.get("rps"))}</td>'
        + "".join(f'<td class="num">{_ms(e.get(k))}</td>' for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
        + "</tr>"
        for e in records
    ]
    head = ("Endpoint", "Requests", "Failures", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms")
    body = _within(rows, len(rows) + more, TABLE_BUDGET, len(head), "endpoints")
    return _table("load-endpoints", head, set(range(1, 8)), body)


def _errors(load: Mapping[str, Any]) -> str:
    records, more = _records(load.get("errors"), MAX_ERRORS)
    if not records:
        return '<p class="empty">No errors.</p>'
    rows = (
        f'<tr><td><code>{_h(e.get("class"), NAME_CHARS)}</code></td><td class="num">{_fmt_count(e.get("count"))}'
        f"</td><td><code>{_h(e.get('example'), ERROR_EXAMPLE_CHARS)}</code></td></tr>"
        for e in records
    )
    body = _within(rows, len(records) + more, TABLE_BUDGET, 3, "error classes")
    return _table("load-errors", ("Class", "Count", "Example"), {1}, body)


def _examples(value: Any) -> str:
    if not isinstance(value, list):
        return "n/a"
    items = "".join(f"<li><code>{_h(v, EXAMPLE_CHARS)}</code></li>" for v in value[:MAX_EXAMPLES])
    more = f"<li>{len(value) - MAX_EXAMPLES} more in results.json</li>" if len(value) > MAX_EXAMPLES else ""
    return f"<ul>{items}{more}</ul>" if items or more else "—"


def _findings(load: Mapping[str, Any]) -> str:
    records, more = _records(load.get("findings"), MAX_FINDINGS)
    if not records:
        return '<p class="empty">No findings: the rulebook found nothing to report in any judged answer.</p>'
    rows = (
        f'<tr{MUST_ROW if f.get("level") == "MUST" else ""} data-level="{_h(f.get("level"), 10)}">'
        f"<td><code>{_h(f.get('check_id'), NAME_CHARS)}</code></td><td>{_h(f.get('level'), 10)}</td>"
        f'<td class="num">{_fmt_count(f.get("count"))}</td><td>{_examples(f.get("examples"))}</td></tr>'
        for f in records
    )
    body = _within(rows, len(records) + more, TABLE_BUDGET, 4, "findings")
    return _table("load-findings", ("Check", "Level", "Count", "Examples"), {2}, body)


def _nonce(load: Mapping[str, Any]) -> str:
    audit = load.get("nonce_audit")
    if not isinstance(audit, Mapping):
        return '<p class="empty">No nonce audit recorded (n/a).</p>'
    items = []
    for key, label in NONCE_TOTALS:
        value = _fmt_count(audit.get(key))
        alarm = key in ALARMING and bool(_count(audit.get(key)))
        items.append(f'<dt>{label}</dt><dd data-total="{key}"{REUSE if alarm else ""}>{value}</dd>')
    return f'<dl class="kv" id="load-nonce-audit">{"".join(items)}</dl>'


def _signers(load: Mapping[str, Any]) -> str:
    signers = load.get("signers")
    if not isinstance(signers, Mapping):
        return '<p id="load-signers">Signers: n/a</p>'
    addresses = signers.get("addresses")
    shown = addresses[:MAX_SIGNERS] if isinstance(addresses, list) else []
    listed = ", ".join(f"<code>{_h(a, ADDRESS_CHARS)}</code>" for a in shown)
    more = (
        f" and {len(addresses) - MAX_SIGNERS} more"
        if isinstance(addresses, list) and len(addresses) > MAX_SIGNERS
        else ""
    )
    return (
        f'<p id="load-signers">{_fmt_count(signers.get("distinct"))} distinct signer(s)'
        + (f": {listed}{more}" if listed else "")
        + "</p>"
    )


def load_section(load: Mapping[str, Any] | Any) -> str:
    """``<section id="load">``: headline, endpoint, error and finding tables, nonce-audit totals, signers,
    and the plots over time (throughput and users, latency, errors and findings, server memory)."""
    if not isinstance(load, Mapping):
        return '<section id="load"><h2>Load run</h2><p class="empty">The load record is unreadable (n/a).</p></section>'
    return (
        '<section id="load"><h2>Load run</h2>'
        + _headline(load)
        + "<h3>Endpoints</h3>"
        + _endpoints(load)
        + "<h3>Findings</h3>"
        + _findings(load)
        + "<h3>Errors</h3>"
        + _errors(load)
        + "<h3>Over time</h3>"
        + _series_plots(load)
        + _rss_plot(load)
        + "<h3>Nonce audit under load</h3>"
        + _nonce(load)
        + _signers(load)
        + "</section>"
    )


# --- Markdown ------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md(value: Any, limit: int) -> str:
    """As render._md: one line, escaped for a table cell (a copy, since render imports this module)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(_plain(value, limit).split()), quote=False))


def _md_rows(rows: Iterable[str], total: int, what: str) -> list[str]:
    shown, used = [], 0
    for row in rows:
        used += len(row.encode("utf-8")) + 1
        if used > MD_BUDGET // 2:
            break
        shown.append(row)
    return shown + (
        ["", f"… {total - len(shown)} more {what} in report.html and results.json"] if len(shown) < total else []
    )


def markdown_block(load: Mapping[str, Any] | Any) -> list[str]:
    """summary.md's lines for a load run: headline numbers, p99 per endpoint, findings per check and the
    nonce-audit totals, what a CI reader needs without opening report.html."""
    if not isinstance(load, Mapping):
        return ["", "### Load run", "", "The load record is unreadable (n/a)."]
    lines = [
        "",
        "### Load run",
        "",
        f"**{_fmt_count(load.get('requests'))} requests** · {_fmt_count(load.get('exchanges'))} judged exchanges · "
        f"{_fmt_count(load.get('cut_off'))} cut off · **{_fmt_number(load.get('rps'))} req/s** over "
        f"{_fmt_number(load.get('elapsed_s'))} s · {_fmt_count(load.get('users'))} users · "
        f"{_fmt_count(load.get('workers'))} worker(s) · stopped by {_md(load.get('stopped_by'), 40)}",
        "",
        "| Endpoint | Requests | Failures | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    endpoints, _ = _records(load.get("endpoints"), MAX_ENDPOINTS)
    lines += [
        f"| {_md(e.get('name'), NAME_CHARS)} | {_fmt_count(e.get('requests'))} | {_fmt_count(e.get('failures'))} | "
        f"{_fmt_number(e.get('rps'))} | {_ms(e.get('p50_ms'))} | {_ms(e.get('p99_ms'))} |"
        for e in endpoints
    ]
    findings, more = _records(load.get("findings"), MAX_FINDINGS)
    lines += ["", f"**Findings ({len(findings) + more} check(s))**", ""]
    if findings:
        rows = (
            f"| {_md(f.get('check_id'), NAME_CHARS)} | {_md(f.get('level'), 10)} | {_fmt_count(f.get('count'))} | "
            f"{_md(_first(f.get('examples')), EXAMPLE_CHARS)} |"
            for f in findings
        )
        lines += ["| Check | Level | Count | First example |", "|---|---|---:|---|"]
        lines += _md_rows(rows, len(findings) + more, "findings")
    else:
        lines.append("None.")
    errors, more = _records(load.get("errors"), MAX_ERRORS)
    if errors:
        lines += [
            "",
            "**Errors:** "
            + ", ".join(f"{_md(e.get('class'), NAME_CHARS)} {_fmt_count(e.get('count'))}" for e in errors),
        ]
    audit = load.get("nonce_audit")
    totals = (
        " · ".join(f"{_md(key, 40)} {_fmt_count(audit.get(key))}" for key, _ in NONCE_TOTALS)
        if isinstance(audit, Mapping)
        else "n/a"
    )
    signers = load.get("signers")
    distinct = _fmt_count(signers.get("distinct")) if isinstance(signers, Mapping) else "n/a"
    return [*lines, "", f"**Nonce audit under load:** {totals}", "", f"**Signers:** {distinct} distinct"]


def _first(examples: Any) -> Any:
    return examples[0] if isinstance(examples, list) and examples else "—"
