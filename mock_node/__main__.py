"""``python -m mock_node``: the same as ``atoma-conformance mock`` (see :func:`mock_node.serve.main`)."""

import sys

from .serve import main

sys.exit(main())
