"""``python -m glkm_prior.cli`` (e.g. under torchrun) runs the ``glkm`` command."""

import sys

from . import main

sys.exit(main())
