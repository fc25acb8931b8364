"""Fuzzing: Hypothesis campaigns against a target, judged by an oracle, with budgets, replayable
failures and the commands ``fuzz`` and ``replay``."""
