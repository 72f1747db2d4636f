"""Solvers for kernel ridge regression: α = (K + nλI)⁻¹ Y, K = k(X, X), Y (n, k).

Every solver takes a :class:`Problem` (the training set, the kernel, the shift nλ, how the ops
run) and returns a :class:`Solution`. Iterative solvers touch K only through
``pyfeat.ops.kernel_matvec`` (the n×n matrix is never formed; memory is O(n·k) for the vectors
plus what the ops use for their blocks); ``direct`` materializes it.

=============  =================================================================================
``direct``     Cholesky of the float64 matrix K + nλI (small n; refuses above a memory limit).
``cg``         conjugate gradient on (K + nλI)α = Y, all right-hand sides in one matvec.
``pcg``        conjugate gradient preconditioned with the rank-q Nyström approximation of K from
               a subsample (Frangella, Tropp & Udell 2023): O(√κ_q) iterations, κ_q the
               condition number left after the top q eigendirections.
``richardson`` kernel gradient descent / Landweber α ← α − η((K + nλI)α − Y), η from a power
               iteration; ``early_stopping=t`` stops at gradient-flow time t (seed 003).
``eigenpro``   EigenPro 2 (Ma & Belkin 2017, 2019): mini-batch iteration preconditioned with the
               top-q Nyström eigensystem, step size from λ_{q+1} and the critical batch size.
``nystrom``    Falkon (Rudi, Carratino & Rosasco 2017): Nyström KRR on M centres, CG on the
               Cholesky-preconditioned normal equations; O(nMd) per iteration, O(M²) memory.
=============  =================================================================================

Precision. Solver vectors (α, residuals, search directions) are float64 whatever the dtype of
X. Kernel values are computed in the working dtype of X (float32 for float32 X). For float32 X,
the matvec multiplies the float32 kernel values by the float64 vector in float64 (one product,
``pyfeat.ops.blocked.kernel_matvec``), so the iterate keeps float64 precision and the solver
solves, to the requested tolerance, the system of the float32-evaluated kernel (entries with
relative error ≈ 1e-7). ``direct`` evaluates K in float64 from X cast to float64.

Residuals are reported relative: ‖(K + nλI)α − y‖ / ‖y‖ per column, the largest over columns.

Shared pieces, each in its own module: :class:`Problem` and :class:`Solution`
(``pyfeat.solvers.problem``), the conjugate-gradient iteration (``krylov``), the power iteration
(``power``) and the progress :class:`Monitor` with :class:`ConvergenceWarning` (``monitor``).
A Problem whose X is rows on a Dask cluster (``cluster``) runs every kernel product on the
workers; the solvers are the same.
"""
from __future__ import annotations

import numpy as np

from pyfeat.solvers.monitor import ConvergenceWarning, Monitor
from pyfeat.solvers.problem import Problem, Solution

__all__ = ["SOLVERS", "Problem", "Solution", "Monitor", "ConvergenceWarning", "solve"]

SOLVERS = ("direct", "cg", "pcg", "richardson", "eigenpro", "nystrom")


def solve(name, problem, *, tol, max_iter, monitor, **options):
    """Run solver ``name`` on ``problem``; ``options`` are the solver's own keyword arguments."""
    from pyfeat.solvers import cg, direct, eigenpro, nystrom, pcg, richardson

    impl = {"direct": direct, "cg": cg, "pcg": pcg, "richardson": richardson, "eigenpro": eigenpro,
            "nystrom": nystrom}[name]
    # an iterate that overflows makes the final residual non-finite, which raises
    # (``monitor.not_converged``): no RuntimeWarning on the way
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return impl.solve(problem, tol=tol, max_iter=max_iter, monitor=monitor, **options)
