"""``cg``: conjugate gradient on (K + nλI)α = Y, every column of Y in the same matvec.

One matvec (``Problem.matvec``, 2n²d FLOPs) per iteration; CG reaches relative residual ε in
O(√κ log(1/ε)) iterations, κ = (λ_max + nλ)/(λ_min + nλ). The residual CG updates recursively
drifts from the true one in finite precision, so at the end the true residual is computed
(one more matvec) and CG restarts from the current α while that improves it; a residual that no
longer improves (precision floor) ends the solve with a ConvergenceWarning.

Default ``max_iter``: 1000 iterations (restarts included).
"""

from __future__ import annotations

from pyfeat.solvers.krylov import restarted
from pyfeat.solvers.monitor import not_converged
from pyfeat.solvers.problem import Solution

DEFAULT_MAX_ITER = 1000


def solve(problem, *, tol, max_iter, monitor):
    max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    alpha, it, restarts, true = restarted(lambda V, cols: problem.matvec(V), problem.Y, tol, max_iter, monitor)
    true = float(true.max())
    converged = true <= tol
    if not converged:
        not_converged("cg", problem, true, tol, it)
    return Solution(alpha, it, converged, monitor.history(), info={"restarts": restarts, "final_residual": true})
