"""Models: two-layer ReLU networks trained by Algorithm 1, their random-features baseline, and the
network trained by gradient descent.

``TwoLayerReLU`` runs Algorithm 1 (preprocessing, one feature step, bias re-initialization,
ridge or GD head); ``RandomFeatures`` is the same network without the first step (the kernel
regime at finite width); ``GDNetwork`` trains both layers (or one) by gradient descent for T steps
in the NTK, mean-field or standard parameterization (``pyfeat.models.gd``; its loop is
``pyfeat.models._train``); ``QuadraticTaylor`` trains the linearized or quadratic Taylor model of a
two-layer network with random signs on the weight movement and ``HierarchicalQuadratic`` the
quadratic model on a fixed random representation (seed 002; ``pyfeat.models.taylor``, on the same
loop). All read the data in row blocks through ``pyfeat.ops`` and can fit
from a task stream without holding X (see ``pyfeat.models.two_layer``).
"""

from pyfeat.models.gd import GDNetwork
from pyfeat.models.taylor import HierarchicalQuadratic, QuadraticTaylor
from pyfeat.models.two_layer import RandomFeatures, TwoLayerReLU

__all__ = ["TwoLayerReLU", "RandomFeatures", "GDNetwork", "QuadraticTaylor", "HierarchicalQuadratic"]
