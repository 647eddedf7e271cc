"""``python -m engine`` is the ``puppetcam`` command line."""
import sys

from engine.cli import main

sys.exit(main())
