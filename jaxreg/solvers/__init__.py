"""Converged solvers for whole regularisation paths: every λ of a grid in ONE jitted program.

Both minimise ``J(θ) = f(θ) + λ₁‖W‖₁``, ``f(θ) = reduce_n ℓ(x̃_n θ, y_n) + (λ₂/2)‖W‖²``
(:mod:`jaxreg.objective`) for each λ of a 1-D grid at once: ``jax.vmap`` over λ of a
``lax.while_loop``, which runs until every member has stopped; a stopped member is frozen (its
state selected unchanged), so its result is the one it would have alone. Internally
``x̃ = [x, 1]``, ``θ = [W; b]``: (p,) or (p, C), p = d + 1 (d without intercept); ``mask``
(p,) or (p, 1) is 1 on penalised rows. The scores ``s = X̃θ`` (n,) or (n, C) are linear in θ,
so a whole line search along d costs ONE product ``X̃d``, and an iteration one ``X̃d`` plus
one ``X̃ᵀr`` (X̃ᵀ stored: 3x faster on CPU).

* :func:`solve_l2_path` (λ₁ = 0): L-BFGS (two-loop recursion, memory m; Armijo backtracking
  with quadratic interpolation), preconditioned by ``M = c_k X̃ᵀX̃/n + λ₂I``: ``H₀ = γ M⁻¹``,
  ``γ = sᵀy / yᵀM⁻¹y``, ``c_k`` = mean of ℓ''(s) at the iterate (p(1−p); 2 for squared). One
  float32 ``eigh`` of ``X̃ᵀX̃/n`` applies M⁻¹ for every λ and c_k; it undoes the
  ill-conditioning of correlated features (pixels). Stops when ``‖∇J‖∞ ≤ tol``.
* :func:`solve_l1_path`: FISTA with gradient-based adaptive restart in the metric
  ``D = c diag(X̃ᵀX̃)/n + λ₂`` (c bounds ℓ'': ¼ logistic, ½ softmax, 2 squared); the step t
  backtracks, grows ×``step_growth`` when accepted, starts at ``1/λ_max(D^-½∇²f D^-½)`` (power
  iteration). ``x⁺ = prox(y − tD⁻¹∇f(y))``: ``x⁺_j = sign(z_j) max(|z_j| − tλ₁/D_j, 0)`` on
  penalised rows. Stops when ``G = D(y − x⁺)/t`` (prox-gradient mapping) has ``‖G‖∞ ≤ tol``,
  returning x⁺: ``dist(0, ∂J(x⁺)) ≤ ‖G‖ + ‖∇f(x⁺) − ∇f(y)‖``.

Non-finite iterates are never accepted: such a member stops at its last finite point with
``converged=False``. Without a penalty (λ = 0) on linearly separable data there is no minimum:
such a member gets ``converged=False`` and a :class:`ConvergenceWarning` (as scikit-learn
warns); a classifier's ``batch.y`` with a single class is refused. Arithmetic is in ``dtype``
(default: that of ``batch.X``).

Weights: ``batch.weight`` (n,) weighs every member's data term (Σ w ℓ / Σ w) and the shared
preconditioner; ``member_weights`` (L, n) multiplies it per member (cross-validation folds as 0/1
masks). Lanes: ``lambdas`` of shape (L, T) make each member a lane of T values solved in turn,
each warm-started from the previous solution, in one ``while_loop``. :mod:`jaxreg.solvers.path`
builds on both: λ_max, glmnet's λ grid, elastic net, ``solve_grid`` (folds × l1_ratio × λ).
"""
import scipy.linalg  # noqa: F401  (jax's own dependency) JAX loads LAPACK through it when it first lowers eigh, the
#                                 preconditioner's: at import, not inside the first solve (~0.4 s of imports there)

from jaxreg.solvers._common import SMOOTH_LOSSES, ConvergenceWarning, SolverResult  # noqa: F401
from jaxreg.solvers.fista import solve_l1_path  # noqa: F401
from jaxreg.solvers.lbfgs import solve_l2_path  # noqa: F401
from jaxreg.solvers.path import lambda_max, lambda_path, solve_grid, solve_members, solve_path  # noqa: F401

__all__ = ["SMOOTH_LOSSES", "ConvergenceWarning", "SolverResult", "solve_l1_path", "solve_l2_path", "lambda_max",
           "lambda_path", "solve_grid", "solve_members", "solve_path"]
