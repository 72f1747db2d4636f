"""``richardson``: kernel gradient descent (Richardson / Landweber iteration)

    α ← α − η ((K + nλI)α − Y),     α₀ = 0,

which is gradient descent in the RKHS on (1/2n)Σ(f(x_i) − y_i)² + (λ/2)‖f‖²_H with step nη
(f = Σ_j α_j k(x_j, ·)). The step η = 1/(θ + ρ + nλ), with θ the top eigenvalue of K from a
block power iteration (4 vectors, 10 iterations, Rayleigh–Ritz) and ρ its error bar ‖Kv − θv‖,
so η ≤ 1/λ_max(K + nλI) up to the estimate's error (stability needs η < 2/λ_max).

**Early stopping by time** (seed 003): gradient flow on the empirical risk
L̂ = (1/2n)Σ(f(x_i) − y_i)² gives dŷ/dt = −(1/n)K(ŷ − y), i.e. u(t) = e^{−tK/n}u(0) for
u = ŷ − y (seed 003 writes e^{−Kt}, with the 1/n absorbed into the time unit). One step of η is
a time increment nη; with ``early_stopping=t`` the solver runs ⌈t/(nη)⌉ steps of the slightly
smaller step t/(n·steps), ending exactly at time t, regardless of ``tol``. Time t is the
regularizer (larger t ≈ smaller ridge, λ ≈ 1/t).

Default ``max_iter``: 10,000 steps.
"""

from __future__ import annotations

import math

from pyfeat.solvers.monitor import not_converged
from pyfeat.solvers.power import top_eigenvalue
from pyfeat.solvers.problem import Solution, column_ratio

DEFAULT_MAX_ITER = 10_000


def step_size(problem):
    """η = 1/(θ + ρ + nλ) (see the module docstring) and θ."""
    theta, rho = top_eigenvalue(problem.kxx, problem.n,
                                min(4, problem.n), problem.rng, problem.xp)
    return 1.0 / (theta + rho + problem.shift), theta


def iterate(problem, alpha, step, steps, tol, monitor, it0=0):
    """``steps`` Richardson steps from ``alpha`` (stopping early when tol is not None and the
    relative residual reaches it); returns (alpha, steps done, relative residual of the returned
    alpha)."""
    Y = problem.Y
    for i in range(steps + 1):
        R = problem.matvec(alpha) - Y
        rel = float(column_ratio(R, Y).max())
        monitor.record(it0 + i, rel)
        if i == steps or (tol is not None and rel <= tol):
            return alpha, i, rel
        alpha = alpha - step * R


def solve(problem, *, tol, max_iter, monitor, early_stopping=None):
    max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    eta, theta = step_size(problem)
    alpha = problem.xp.zeros_like(problem.Y)
    info = {"lambda_max": theta}
    if early_stopping is not None:
        n = problem.n
        steps = max(1, math.ceil(early_stopping / (n * eta)))
        if steps > max_iter:
            raise ValueError(
                f"early_stopping={early_stopping!r} needs {steps} steps of η={eta:.3g}, more than "
                f"max_iter={max_iter}; raise max_iter or lower early_stopping"
            )
        eta = early_stopping / (n * steps)
        alpha, it, _ = iterate(problem, alpha, eta, steps, None, monitor)
        info.update(step=eta, time=early_stopping)
        return Solution(alpha, it, True, monitor.history(), info=info)
    alpha, it, rel = iterate(problem, alpha, eta, max_iter, tol, monitor)
    converged = rel <= tol
    if not converged:
        not_converged("richardson", problem, rel, tol, it, " (use cg or eigenpro for small ridge)")
    info["step"] = eta
    return Solution(alpha, it, converged, monitor.history(), info=info)
