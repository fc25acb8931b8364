"""Shared test configuration: Hypothesis profiles.

- ``ci`` (default): fast enough for every commit on a 2-core machine.
- ``deep``: long campaigns, selected with ``HYPOTHESIS_PROFILE=deep``.
Both derandomize nothing: failures are reproducible through Hypothesis' printed seed and database.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
