"""A byte-compatible mock of an Atoma confidential-compute node (proxy face), strict by default.

``create_app(MockConfig(...))`` returns an ASGI app; ``mock_node.testing.running_node`` serves it on
a loopback port; ``atoma-conformance mock`` serves it from the command line. See docs/mock-node.md.
"""

from .app import create_app
from .behaviour import ATOMA_NODE_COMPAT, PROFILES, STRICT, Behaviour
from .config import ConfigError, MockConfig
from .faults import CATALOGUE, FAULTS, Fault

__all__ = [
    "ATOMA_NODE_COMPAT",
    "CATALOGUE",
    "FAULTS",
    "PROFILES",
    "STRICT",
    "Behaviour",
    "ConfigError",
    "Fault",
    "MockConfig",
    "create_app",
]
