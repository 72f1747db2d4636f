"""Models: two-layer ReLU networks trained by Algorithm 1 and their random-features baseline.

``TwoLayerReLU`` runs Algorithm 1 (preprocessing, one feature step, bias re-initialization,
ridge or GD head); ``RandomFeatures`` is the same network without the first step (the kernel
regime at finite width). Both read the data in row blocks through ``pyfeat.ops`` and can fit
from a task stream without holding X (see ``pyfeat.models.two_layer``).
"""

from pyfeat.models.two_layer import RandomFeatures, TwoLayerReLU

__all__ = ["TwoLayerReLU", "RandomFeatures"]
