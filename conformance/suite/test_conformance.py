"""One test per check of the catalogue. The check does the work; this file only connects it to pytest."""

from __future__ import annotations

import pytest

from conformance.checks import CATALOGUE, Check, Run
from conformance.suite.support import enforce, marks_for, record_verdict


@pytest.mark.parametrize("check", [pytest.param(c, id=c.id, marks=marks_for(c)) for c in CATALOGUE])
def test_check(check: Check, conformance_run: Run, request: pytest.FixtureRequest) -> None:
    verdict = check.run(conformance_run)
    record_verdict(request.config, check, verdict)
    enforce(check, verdict)
