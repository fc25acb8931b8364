"""``python -m mock_node``: the same as ``atoma-conformance mock``."""

import sys

from .serve import main

sys.exit(main())
