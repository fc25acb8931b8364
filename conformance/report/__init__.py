"""Reports, regression gating and certification evidence, all built from results.json."""
