"""scikit-learn-compatible estimators over jaxreg's batched solvers and folds.

    from jaxreg.sklearn import LogisticRegression, LogisticRegressionCV
    clf = LogisticRegressionCV(Cs=10, cv=5, penalty="l1").fit(X, y)    # folds × Cs: ONE program
    clf.C_, clf.scores_.shape, clf.predict_proba(X[:3])

* :class:`LogisticRegression`: binary (the logistic loss) or multinomial (softmax over all K
  classes, as scikit-learn's lbfgs) with ``penalty`` "l2" / "l1" / "elasticnet" / None, ``C``,
  ``l1_ratio``, ``fit_intercept``, ``class_weight`` and ``sample_weight``. It minimises
  scikit-learn's ``C Σ_n w_n ℓ_n + penalty``, i.e. jaxreg's weighted-mean objective at
  ``λ = 1 / (C Σ_n w_n)`` with (λ₁, λ₂) = (αλ, (1 − α)λ) (α = 1 for L1, 0 for L2). L2 runs the
  batched L-BFGS, L1 and elastic net batched FISTA (:func:`jaxreg.solvers.path.solve_members`).
* :class:`LogisticRegressionCV`: every fold × l1_ratio × C, and the refit candidates (all rows ×
  l1_ratio × C), are solved in one batched call (:func:`jaxreg.solvers.path.solve_grid`: each
  fold's path over the Cs is a warm-started lane; two programs when some l1_ratio is 0 and
  others are not: L-BFGS and FISTA). Folds are 0/1 weight masks over the same arrays, from
  scikit-learn's splitter for ``cv`` (the same folds as scikit-learn), and each fold's λ is
  1/(C Σ_{its rows} w) as scikit-learn's. Fold scores with scikit-learn's scorer; the best
  (C, l1_ratio) by the summed fold score, or the one-standard-error rule (``selection="1se"``,
  :func:`jaxreg.cv.select`); ``refit=True`` reads the selected all-rows solution (no second
  solve or compile); ``refit=False``: the mean of each fold's best coefficients, as
  scikit-learn.

``tol`` is the solvers' stopping measure on the mean-scaled objective (‖∇J‖∞ for L-BFGS, as
scikit-learn's lbfgs ``gtol``; the prox-gradient mapping for FISTA). ``dtype`` "float64" (the
default, computed under ``jax.enable_x64``) or "float32" (about 2x faster on CPU). Small
problems are padded to a few bucket shapes (rows of zero weight, columns of zeros, which leave
the solution unchanged) so repeated fits reuse compiled programs. Attributes follow scikit-learn
1.8+'s simplified layout (``use_legacy_attributes=False``): ``C_`` and ``l1_ratio_`` floats,
``scores_``, ``n_iter_`` (n_folds, n_l1_ratios, n_Cs), ``coefs_paths_`` (n_folds, n_l1_ratios,
n_Cs, n_classes, n_features + fit_intercept).

scikit-learn is optional: without it this module imports, and building an estimator raises
ImportError.
"""
from __future__ import annotations

import contextlib
from numbers import Integral

import jax
import numpy as np

from jaxreg import cv as jcv
from jaxreg import weights as jweights
from jaxreg.objective import Batch, Objective
from jaxreg.sklearn_args import DTYPES, bucket, l1_share, positive
from jaxreg.solvers.path import solve_grid, solve_members

__all__ = ["LogisticRegression", "LogisticRegressionCV"]

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import check_cv
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised by a subprocess test
    HAVE_SKLEARN = False

    class BaseEstimator:
        def __new__(cls, *args, **kwargs):
            raise ImportError(f"jaxreg.sklearn.{cls.__name__} needs scikit-learn (pip install scikit-learn)")

    class ClassifierMixin:
        pass

class _Base(ClassifierMixin, BaseEstimator):
    """Shared: validation, labels, weights, the padded batch, prediction."""

    def _check_common(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        positive(self.tol, "tol")
        positive(self.max_iter, "max_iter", integer=True)
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise ValueError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")

    def _precision(self):
        return jax.enable_x64(True) if self.dtype == "float64" else contextlib.nullcontext()

    def _prepare(self, X, y, sample_weight):
        """Validated X, y, class indices (sets classes_), sample weights or None, example weights
        (n,: sample × class weights), the objective."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        K = len(self.classes_)
        if K < 2:
            raise ValueError(f"This solver needs samples of at least 2 classes in the data, but the data "
                             f"contains only one class: {self.classes_[0]!r}")
        s = None if sample_weight is None else jweights.check_sample_weight(sample_weight, X.shape[0])
        w = jweights.class_weight_vector(self.class_weight, y_index, K, s, self.classes_)[y_index]
        w = w if s is None else w * s
        if np.unique(y_index[w > 0]).size < 2:
            raise ValueError("This solver needs at least 2 classes with positive sample weight; "
                             "sample_weight or class_weight gives weight zero to all but one class")
        obj = (Objective("softmax", K, fit_intercept=bool(self.fit_intercept)) if K > 2
               else Objective("logistic", fit_intercept=bool(self.fit_intercept)))
        return X, y, y_index, s, w, obj

    def _batch(self, X, y_index, w):
        """The batch padded to bucket shapes (zero-weight rows, zero columns), in ``dtype``."""
        (n, d), dt = X.shape, np.dtype(self.dtype)
        N, D = bucket(n, 4096, 256), bucket(d, 256, 8)
        Xp = np.zeros((N, D), dt)
        Xp[:n, :d] = X
        yp = np.zeros(N, np.int64)
        yp[:n] = y_index
        wp = np.zeros(N, dt)
        wp[:n] = w
        return Batch(Xp, yp if len(self.classes_) > 2 else yp.astype(dt), wp)

    def _set_coef(self, params, d):
        W = np.asarray(params["W"], np.float64)[:d]
        b = np.asarray(params.get("b", np.zeros(W.shape[1:])), np.float64)
        binary = W.ndim == 1
        self.coef_ = W[None, :] if binary else W.T.copy()
        self.intercept_ = np.atleast_1d(b).copy() if self.fit_intercept else np.zeros(1 if binary else W.shape[1])

    def decision_function(self, X):
        """Scores X coef_ᵀ + intercept_: (n,) binary, (n, K) multinomial."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        s = X @ self.coef_.T + self.intercept_
        return s[:, 0] if s.shape[1] == 1 else s

    def predict_proba(self, X):
        s = self.decision_function(X)
        if s.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-s))
            return np.stack([1.0 - p, p], axis=1)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        s = self.decision_function(X)
        return self.classes_[(s > 0).astype(int) if s.ndim == 1 else np.argmax(s, axis=1)]


class LogisticRegression(_Base):
    """scikit-learn's ``LogisticRegression`` (module docstring) on jaxreg's solvers."""

    def __init__(self, penalty="l2", *, C=1.0, l1_ratio=None, fit_intercept=True, class_weight=None,
                 tol=1e-4, max_iter=1000, dtype="float64"):
        self.penalty, self.C, self.l1_ratio, self.fit_intercept = penalty, C, l1_ratio, fit_intercept
        self.class_weight, self.tol, self.max_iter, self.dtype = class_weight, tol, max_iter, dtype

    def fit(self, X, y, sample_weight=None):
        """Fit to X (n, d) and labels y (n,) of any values; ``sample_weight`` (n,) optional."""
        self._check_common()
        alpha = l1_share(self.penalty, self.l1_ratio)
        C = np.inf if self.penalty is None else positive(self.C, "C")
        X, _, y_index, _, w, obj = self._prepare(X, y, sample_weight)
        lam = 0.0 if np.isinf(C) else 1.0 / (C * w.sum())
        with self._precision():
            res = solve_members(obj, self._batch(X, y_index, w), [alpha * lam], [(1 - alpha) * lam],
                                tol=self.tol, max_iter=self.max_iter, dtype=self.dtype)
        self._set_coef({k: v[0] for k, v in res.params.items()}, X.shape[1])
        self.n_iter_ = np.asarray(res.n_iter, np.int32)
        return self


class LogisticRegressionCV(_Base):
    """scikit-learn's ``LogisticRegressionCV`` (module docstring): ``Cs`` (an int: that many
    values log-spaced over [1e-4, 1e4], as scikit-learn), ``l1_ratios`` (elastic net), ``cv``
    (int, splitter or splits; default 5 stratified folds), ``scoring`` (default accuracy),
    ``refit``, ``selection`` ("best" or "1se"), ``n_blocks`` (warm-started lanes per fold ×
    l1_ratio path over the Cs: 1 = each path solved in turn from the smallest C, warm-started;
    len(Cs) = every C at once from zero)."""

    def __init__(self, *, Cs=10, l1_ratios=None, fit_intercept=True, cv=None, penalty="l2", scoring=None,
                 tol=1e-4, max_iter=1000, class_weight=None, refit=True, selection="best", n_blocks=1,
                 dtype="float64"):
        self.Cs, self.l1_ratios, self.fit_intercept, self.cv, self.penalty = Cs, l1_ratios, fit_intercept, cv, penalty
        self.scoring, self.tol, self.max_iter, self.class_weight = scoring, tol, max_iter, class_weight
        self.refit, self.selection, self.n_blocks, self.dtype = refit, selection, n_blocks, dtype

    def _grid(self):
        if isinstance(self.Cs, Integral) and not isinstance(self.Cs, bool):
            Cs = np.logspace(-4, 4, positive(self.Cs, "Cs", integer=True))
        else:
            Cs = np.asarray(self.Cs, np.float64).ravel()
            if Cs.size == 0 or not np.all(np.isfinite(Cs)) or np.any(Cs <= 0):
                raise ValueError(f"Cs must be a positive int or a sequence of positive finite numbers, got {self.Cs!r}")
        if self.penalty not in ("l2", "l1", "elasticnet"):
            raise ValueError(f"penalty must be one of ('l2', 'l1', 'elasticnet'), got {self.penalty!r}")
        if self.penalty == "elasticnet":
            ratios = np.asarray([] if self.l1_ratios is None else self.l1_ratios, np.float64).ravel()
            if ratios.size == 0 or np.any(~(ratios >= 0) | ~(ratios <= 1)):
                raise ValueError(f"l1_ratios must be a non-empty sequence of numbers in [0, 1] with "
                                 f"penalty='elasticnet', got {self.l1_ratios!r}")
        else:
            ratios = np.asarray([l1_share(self.penalty, None)])
        if self.selection not in jcv.RULES:
            raise ValueError(f"selection must be one of {jcv.RULES}, got {self.selection!r}")
        if not isinstance(self.refit, (bool, np.bool_)):
            raise ValueError(f"refit must be True or False, got {self.refit!r}")
        return Cs, ratios

    def _folds(self, X, y, y_index, w):
        splits = list(check_cv(5 if self.cv is None else self.cv, y, classifier=True).split(X, y))
        if len(splits) < 2:
            raise ValueError(f"cv must give at least 2 folds, got {len(splits)}")
        train = np.zeros((len(splits), X.shape[0]), bool)
        for k, (tr, te) in enumerate(splits):
            train[k, tr] = True
            missing = np.setdiff1d(np.unique(y_index[w > 0]), np.unique(y_index[tr][w[tr] > 0]))
            if missing.size:
                raise ValueError(f"cv: training fold {k} has no example of class(es) "
                                 f"{self.classes_[missing].tolist()}; use fewer folds or stratified folds")
            if not np.sum(w[te]) > 0:
                raise ValueError(f"cv: test fold {k} has no example with positive weight")
        return splits, train

    def _accuracy(self, params, k, X, y_index, sample_weight, d):
        """(n_l1_ratios, n_Cs) accuracies (weighted by ``sample_weight``) of fold k's solutions on
        its test rows: scikit-learn's ``accuracy_score`` of ``predict``, for all of them at once."""
        W = np.asarray(params["W"][k], np.float64)[:, :, :d]  # (nA, nC, d[, K])
        b = np.asarray(params["b"][k], np.float64) if self.fit_intercept else np.zeros(W.shape[:2] + W.shape[3:])
        s = np.einsum("nd,acd...->nac...", X, W) + b
        pred = (s > 0).astype(int) if s.ndim == 3 else np.argmax(s, axis=-1)
        hit = pred == y_index[:, None, None]
        w = np.ones(len(y_index)) if sample_weight is None else sample_weight
        return np.einsum("n,nac->ac", w, hit) / w.sum()

    def _member(self, params, d):
        est = LogisticRegression(fit_intercept=self.fit_intercept)
        est.classes_, est.n_features_in_ = self.classes_, d
        est._set_coef(params, d)
        return est

    def fit(self, X, y, sample_weight=None):
        """Cross-validate every fold × C × l1_ratio, and the refit candidates, in one batched
        solve; score the folds; select; read the refit off the all-rows lanes."""
        self._check_common()
        Cs, ratios = self._grid()
        n_blocks = positive(self.n_blocks, "n_blocks", integer=True)
        if n_blocks > len(Cs):
            raise ValueError(f"n_blocks must be <= the number of Cs ({len(Cs)}), got {n_blocks}")
        X, y, y_index, s, w, obj = self._prepare(X, y, sample_weight)
        splits, train = self._folds(X, y, y_index, w)
        K, nC, nA, d = len(splits), len(Cs), len(ratios), X.shape[1]
        rows = np.vstack([train, np.ones((1, X.shape[0]), bool)]) if self.refit else train
        batch = self._batch(X, y_index, w)
        masks = np.zeros((rows.shape[0], batch.X.shape[0]))
        masks[:, :X.shape[0]] = rows
        lam = 1.0 / (Cs[None, :] * (rows * w).sum(axis=1)[:, None])  # C of each row's own Σ w
        with self._precision():
            res = solve_grid(obj, batch, lam, ratios, member_weights=masks, n_blocks=n_blocks, tol=self.tol,
                             max_iter=self.max_iter, dtype=self.dtype)  # leaves (rows, nA, nC, ...)
        member = lambda r, ai, ci: {k: v[r, ai, ci] for k, v in res.params.items()}  # noqa: E731
        scores = np.empty((K, nA, nC))
        for k in range(K):
            te = splits[k][1]
            if self.scoring in (None, "accuracy"):  # every (l1_ratio, C) of the fold in one product
                scores[k] = self._accuracy(res.params, k, X[te], y_index[te], None if s is None else s[te], d)
                continue
            scorer = get_scorer(self.scoring)
            for ai, ci in np.ndindex(nA, nC):
                scores[k, ai, ci] = scorer(self._member(member(k, ai, ci), d), X[te], y[te],
                                           **({} if s is None else {"sample_weight": s[te]}))
        self.Cs_, self.l1_ratios_ = Cs, ratios
        self.scores_, self.n_iter_ = scores, np.asarray(res.n_iter[:K])
        theta = [np.asarray(res.params["W"][:K, :, :, :d]).reshape(K, nA, nC, d, -1)]
        if self.fit_intercept:
            theta.append(np.asarray(res.params["b"][:K]).reshape(K, nA, nC, 1, -1))
        self.coefs_paths_ = np.swapaxes(np.concatenate(theta, axis=3), 3, 4)
        self.cv_mean_, self.cv_se_ = jcv.summarise(self.scores_, axis=0)  # (n_l1_ratios, n_Cs)
        cmajor = lambda A: np.swapaxes(A, 0, 1).ravel()  # noqa: E731  (C, l1_ratio) order, as scikit-learn
        i = jcv.select(cmajor(self.cv_mean_), cmajor(self.cv_se_), greater_is_better=True, rule=self.selection,
                       strength=np.repeat(-Cs, nA), group=np.tile(np.arange(nA), nC))
        ci, ai = divmod(i, nA)
        if self.refit:  # the all-rows lanes solved the refit of every (C, l1_ratio) alongside the folds
            self.C_, self.l1_ratio_ = float(Cs[ci]), float(ratios[ai])
            self._set_coef(member(K, ai, ci), d)
        else:  # each fold's own best point, averaged (scikit-learn's refit=False)
            best = [divmod(int(np.argmax(np.swapaxes(self.scores_[k], 0, 1).ravel())), nA) for k in range(K)]
            avg = {key: np.mean([member(k, b[1], b[0])[key] for k, b in enumerate(best)], axis=0)
                   for key in res.params}
            self.C_ = float(np.mean([Cs[b[0]] for b in best]))
            self.l1_ratio_ = float(np.mean([ratios[b[1]] for b in best]))
            self._set_coef(avg, d)
        return self

    def score(self, X, y, sample_weight=None):
        """The ``scoring`` score (default accuracy) on (X, y)."""
        scorer = get_scorer("accuracy" if self.scoring is None else self.scoring)
        return scorer(self, X, y, **({} if sample_weight is None else {"sample_weight": sample_weight}))
