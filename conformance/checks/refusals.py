"""Every probe a target must refuse, gathered from the probe modules, and the valid request sent after
all of them.

Why a module of its own: the shared refusal rules (ERR-017 never 5xx, ERR-018 the JSON error shape,
ERR-019 no echo of the plaintext, ERR-026 Table 10.1's code and status) hold for every refusal, so they
read every refusal probe; and the probe modules import one another in one direction only
(``probes_body`` reads ``probes``), so the union can live in none of them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..records import ExchangeRecord
from .base import Skip
from .probe import Probe, probe
from .probes import ENVELOPE_REFUSALS
from .probes_body import ERR_MODEL_NOT_SERVED, ERR_OVERSIZE_CHUNKED, ERR_UNSERVABLE_PLAINTEXT, PLAINTEXT_SHAPES
from .probes_http import HTTP_REFUSALS
from .run import Run

# Not STREAM_FOR_EMBEDDINGS or STREAM_FOR_IMAGES: a JSON answer to them is conformant (R9.1).
BODY_REFUSALS: tuple[Probe[Any], ...] = (
    PLAINTEXT_SHAPES,
    ERR_UNSERVABLE_PLAINTEXT,
    ERR_MODEL_NOT_SERVED,
    ERR_OVERSIZE_CHUNKED,
)
REFUSALS: tuple[Probe[Any], ...] = (*ENVELOPE_REFUSALS, *BODY_REFUSALS, *HTTP_REFUSALS)


def _health_after(run: Run) -> ExchangeRecord:
    """A valid round trip after every refusal probe that this run has sent."""
    for refusal in REFUSALS:
        with contextlib.suppress(Skip):  # a probe of the other face, or the member table's other depth
            run.get(refusal)
    return run.send("chat")


HEALTH_AFTER: Probe[ExchangeRecord] = probe("health_after", reads=REFUSALS)(_health_after)
