"""Engines behind one interface (``engine.animators.base.Animator``).

``create_animator(name, **options)`` builds one by its ``--engine`` name. Engines import lazily so
the default install (no torch) never touches the neural ones.
"""
from __future__ import annotations

from engine.animators.base import Animator
from engine.errors import PuppetcamError

ENGINES = ("mesh", "fomm")


def create_animator(name: str = "mesh", **options) -> Animator:
    if name == "mesh":
        from engine.animators.mesh import MeshAnimator

        return MeshAnimator(**options)
    if name == "fomm":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise PuppetcamError("the fomm engine needs torch: pip install 'puppetcam[neural]'") from None
        from engine.animators.fomm import FommAnimator

        return FommAnimator(**options)
    raise PuppetcamError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
