"""jaxreg: logistic, softmax and linear regression (and the multiclass hinge loss) as pure JAX
functions, with closed-form gradients, batched hyperparameter sweeps and hypergradients."""
from jaxreg.objective import (Batch, Objective, Penalty, lambda_to_sklearn_C, penalty,
                              sklearn_C_to_lambda)
from jaxreg.grads import check_grad, finite_difference_grad, relative_error
from jaxreg import compile_cache

compile_cache.enable()  # jaxreg's programs load from disk in later processes (off: JAXREG_XLA_CACHE=0)

__version__ = "0.1.0"

__all__ = [
    "Batch", "Objective", "Penalty", "penalty", "lambda_to_sklearn_C", "sklearn_C_to_lambda",
    "check_grad", "finite_difference_grad", "relative_error", "compile_cache",
]
