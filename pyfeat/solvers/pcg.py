"""``pcg``: conjugate gradient on (K + μI)α = Y (μ = nλ) preconditioned with the Nyström
approximation of K (Frangella, Tropp & Udell, "Randomized Nyström preconditioning", SIMAX 2023;
the Woodbury form of Cutajar et al. 2016).

**Preconditioner.** From the subsample's top eigenpairs K_SS ≈ U_q diag(σ_q) U_qᵀ
(``pyfeat.solvers.subsample``): W = U_q diag(σ_q)^{-1/2} (s × q) and F = K(X, X_S) W (n × q),
so that FFᵀ = K_nS U_q Σ_q⁻¹ U_qᵀ K_Sn is the rank-q Nyström approximation of K, and

    P = FFᵀ + μI,     P⁻¹r = (r − F V diag(1/(Λ + μ)) Vᵀ Fᵀ r)/μ     (FᵀF = VΛVᵀ, q × q).

P⁻¹(K + μI) has its eigenvalues near 1 on the top-q space and in [1, (λ_{q+1}(K) + μ)/μ]
elsewhere, so PCG needs O(√((nτ_{q+1} + μ)/μ)) iterations where CG needs O(√((nτ_1 + μ)/μ)):
for the NTK at d = 32 the top q ≈ 560 directions (spherical-harmonic degrees 0–2) hold 94 % of
the trace (research notes §1.4–1.5: 116 CG iterations against 23 PCG iterations at n = 8000,
λ = 1e-4).

**q**: the subsample's eigenvalues above the ridge, q = #{i ≤ r : τ̂_i > λ} (flattening the
directions below λ gains nothing), at least 1, at most r ≈ s/5 and what F fits in
(n·q·itemsize ≤ memory_limit()/4, ``pyfeat.solvers.direct.memory_limit``).

**Costs.** Setup: the subsample (s² kernel values and O(s²r) for its eigenpairs), F (one
kernel_matvec with q columns in the working dtype: n·s kernel values and 2nsq FLOPs), FᵀF
(nq²). Per iteration: one matvec (n² kernel values, all columns at once) and 4nqk FLOPs for
P⁻¹. Memory: F (n·q) plus O(n·k) vectors.

**Several shifts.** ``shifts`` gives each column of Y its own μ_j (ridge="auto" solves a whole
grid in one run): column j is preconditioned with its own P_j = FFᵀ + μ_jI from the same F.

**After ridge="auto".** The selection's multi-shift run on the training split
(``pyfeat.solvers.ridge_path.held_out``) leaves a ``Start``: its subsample (a uniform subsample
of the training rows is one of all rows), F on the training rows and its α at each λ of the
grid. The final solve at λ* takes that subsample (no second K_SS and its eigenpairs) when it
has the size the solve would draw (``subsample=`` given, or n_tr and n both above the size
cap; else it draws its own and starts from 0), computes F only on the held-out rows, and
starts CG from the selection's α at λ* on the training rows (0 on the held-out ones).

Stopping: the relative residual ‖(K + μI)α − y‖/‖y‖ of every column ≤ tol, checked on the true
residual at the end (restarts as ``cg``). Default ``max_iter``: 500.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyfeat import _linalg
from pyfeat.solvers import direct, subsample
from pyfeat.solvers.krylov import restarted
from pyfeat.solvers.monitor import not_converged
from pyfeat.solvers.problem import Solution, to_host

DEFAULT_MAX_ITER = 500


@dataclass
class Start:
    """What ridge="auto"'s run on the training rows leaves for the final solve (module
    docstring): ``n`` all rows, ``rows`` the training rows (indices into all rows, sorted),
    ``sub`` its subsample with indices into all rows, ``F`` its features on ``rows``
    (len(rows) × q) and ``coef`` its α on ``rows`` for the grid (column g·k + j: output j at
    λ_g). ``solve`` releases F and coef once it has used them."""

    n: int
    rows: object
    sub: subsample.Subsample
    F: object
    coef: object

    def fits(self, problem, s):
        """Whether this start belongs to ``problem`` (its rows and outputs) and has s points."""
        return (self.F is not None and self.n == problem.n and self.sub.size == s
                and self.coef.shape[1] % problem.Y.shape[1] == 0)

    def alpha(self, problem, g):
        """The initial α on all rows: the training rows' α at λ_g, 0 on the others."""
        k = problem.Y.shape[1]
        alpha = problem.xp.zeros_like(problem.Y)
        alpha[self.rows] = self.coef[:, g * k : (g + 1) * k]
        return alpha


class NystromPreconditioner:
    """P⁻¹ = (FFᵀ + μI)⁻¹ by Woodbury (module docstring), for one shift per column. ``known``:
    (rows, their F with at least q columns), so that F is computed on the other rows only."""

    def __init__(self, problem, sub, q, known=None):
        xp = problem.xp
        # F in the working dtype (n × q): the preconditioner needs no more precision than K itself
        W = sub.U[:, :q] / np.sqrt(np.maximum(sub.sigma[:q], 1e-300))
        if known is None:
            self.F = problem.kernel_features(sub.X, W)
        else:
            rows, F_rows = known
            others = np.setdiff1d(np.arange(problem.n), to_host(rows), assume_unique=True)
            self.F = xp.empty((problem.n, q), F_rows.dtype)
            self.F[rows] = F_rows[:, :q]
            if others.size:
                others = xp.asarray(others)
                self.F[others] = problem.kernel_features(sub.X, W, rows=others)
        FtF = to_host(self.F.T @ self.F).astype(np.float64)
        with _linalg.single_threaded_blas():
            lam, V = np.linalg.eigh(FtF)
        self.lam, self.V = xp.asarray(np.maximum(lam, 0.0)), xp.asarray(V)

    def __call__(self, R, shifts):
        """P⁻¹R, column j with its shift shifts[j] (the products with F in F's dtype)."""
        dt = self.F.dtype
        FtR = (self.F.T @ R.astype(dt)).astype(R.dtype)
        inner = self.V @ ((self.V.T @ FtR) / (self.lam[:, None] + shifts[None, :]))
        return (R - self.F @ inner.astype(dt)) / shifts[None, :]


def choose_rank(problem, sub, lam):
    """q of the module docstring."""
    tau = sub.tau
    above = int(np.count_nonzero(tau > lam)) if lam > 0 else tau.size
    fits = direct.memory_limit() // 4 // max(1, problem.n * problem.working_dtype.itemsize)
    return int(max(1, min(above, tau.size, fits)))


def solve(problem, *, tol, max_iter, monitor, subsample_size=None, shifts=None, quiet=False, start=None):
    """``shifts``: one μ per column of Y (default: the problem's shift); ``quiet``: no
    ConvergenceWarning (the ridge selection reports unconverged columns itself); ``start``:
    (Start, g) from ridge="auto" at λ_g (module docstring; used when ``Start.fits``: its
    subsample has the size this solve would draw, else a new subsample and α = 0). The
    Solution's state is (subsample, F)."""
    max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    xp, Y = problem.xp, problem.Y
    mu = np.broadcast_to(np.asarray(problem.shift if shifts is None else shifts, np.float64), (Y.shape[1],))
    if not (mu > 0).all():
        raise ValueError("solver='pcg' needs ridge > 0 (the preconditioner is FFᵀ + nλI); use 'eigenpro' "
                         "or 'cg' for ridge = 0")
    s = subsample.subsample_size(problem) if subsample_size is None else min(problem.n, subsample_size)
    reuse = start is not None and start[0].fits(problem, s)
    sub = start[0].sub if reuse else subsample.draw(problem, s)
    q = choose_rank(problem, sub, float(mu.min()) / problem.n)
    x0 = None
    if reuse:
        begin, g = start
        q = min(q, begin.F.shape[1])
        P = NystromPreconditioner(problem, sub, q, known=(begin.rows, begin.F))
        x0 = begin.alpha(problem, g)
        begin.F = begin.coef = None  # not held through the iterations
    else:
        P = NystromPreconditioner(problem, sub, q)
    mu_d = xp.asarray(mu)

    def apply(V, cols):
        return problem.kxx(V) + mu_d[cols][None, :] * V

    alpha, it, restarts, residuals = restarted(apply, Y, tol, max_iter, monitor,
                                               precondition=lambda R, cols: P(R, mu_d[cols]),
                                               x0=x0)
    true = float(residuals.max())
    converged = true <= tol
    if not converged and not quiet:
        not_converged("pcg", problem, true, tol, it)
    info = {"subsample": s, "n_components": q, "tau": sub.tau, "restarts": restarts, "final_residual": true,
            "column_residuals": residuals, "reused_selection": reuse}
    return Solution(alpha, it, converged, monitor.history(), info=info, state=(sub, P.F))
