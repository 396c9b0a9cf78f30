"""`python -m jaxinpaint.demo --workdir DIR [--port 7860]`: see `jaxinpaint.demo`."""

import sys

from jaxinpaint.demo import main

sys.exit(main())
