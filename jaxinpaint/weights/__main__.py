"""``python -m jaxinpaint.weights``: see `jaxinpaint.weights.cli`."""

import sys

from jaxinpaint.weights import cli

sys.exit(cli.main())
