"""The embedded default engine: a piecewise-affine warp of the portrait along Face Mesh landmarks."""
from engine.animators.mesh.animator import MeshAnimator

__all__ = ["MeshAnimator"]
