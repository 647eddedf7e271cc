"""Puppetcam's engine: capture -> face tracking -> motion -> animator -> compositing -> sinks.

No Qt here, ever: the GUI in ``app/`` and the command line in ``engine/cli.py`` both drive it.
"""
