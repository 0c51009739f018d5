"""``python -m glkm_prior.cli`` (e.g. under torchrun) runs the ``glkm`` command."""

import sys

from .app import main

sys.exit(main())
