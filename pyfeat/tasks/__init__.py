"""Data models of the seeds with their exact population quantities.

- :class:`MultiIndex` — f*(x) = g(Ux), x ~ N(0, I_d), g a polynomial in the Hermite basis
  (seed 001: Assumptions 1–2, H = E[∇²f*], κ); ``head="hard"`` violates Assumption 2.
- :class:`SingleIndex` — σ*(⟨x, μ⟩/√(1+θ)) with x ~ N(0, I_d + θμμᵀ), θ = d^β (seed 000).
- :class:`LowRankPolynomial` — Σ_s α_s (β_sᵀx)^{p_s} (seed 002).
- :func:`transfer_pair` — source and target MultiIndex sharing U (seed 000: transfer learning).
- :class:`Heaviside1D`, :class:`SmoothStep1D` — the 1-D example of seed 001 and its smooth twin.

Every task has ``d``, ``mean``, ``variance`` (exact), ``task(X)`` = f* on the rows of X,
``sample(n, noise, seed, dtype, backend)`` → (X, y) and ``stream(n, block, ...)``, which yields
the same rows in blocks of any size (see ``pyfeat.tasks._base`` for the seeding scheme).
"""

from pyfeat.tasks._base import CHUNK_ROWS, Task
from pyfeat.tasks.low_rank import LowRankPolynomial
from pyfeat.tasks.multi_index import MultiIndex, transfer_pair
from pyfeat.tasks.one_dim import Heaviside1D, SmoothStep1D
from pyfeat.tasks.single_index import SingleIndex

__all__ = ["CHUNK_ROWS", "Task", "MultiIndex", "SingleIndex", "LowRankPolynomial", "transfer_pair",
           "Heaviside1D", "SmoothStep1D"]
