"""``atoma-conformance load``: Locust drives the load, the rulebook judges every answer.

:mod:`.command` steers (options, the embedded mock, reports), :mod:`.engine` is the Locust process (local
runner, master or worker), :mod:`.judge` and :mod:`.audit` judge and remember within bounded memory, and
:mod:`.plan` is what passes between them. Nothing here imports Locust except the engine, which runs in
a process of its own (see its docstring).
"""
