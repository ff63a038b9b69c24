"""The estimator contract shared by every learner in nsprog and trebalink.

scikit-learn's rules: ``__init__`` only stores its arguments under the same names (so
``get_params`` / ``set_params`` / :func:`sklearn.base.clone` work); ``fit`` learns and
returns ``self``; every learned attribute ends in ``_`` and is set only once a fit has
succeeded, so a failed fit never leaves an object that looks fitted. Methods that need a
fitted estimator call :meth:`Estimator._check_fitted`, which raises :class:`NotFittedError`.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = ["Estimator", "NotFittedError", "is_fitted"]


class NotFittedError(_SklearnNotFittedError):
    """An estimator was used before a successful ``fit``.

    A subclass of scikit-learn's ``NotFittedError`` (itself a ``ValueError`` and an
    ``AttributeError``), so every existing handler catches it."""


def is_fitted(estimator) -> bool:
    """True when ``estimator`` holds the attributes of a successful fit."""
    hook = getattr(estimator, "__sklearn_is_fitted__", None)
    if hook is not None:
        return bool(hook())
    return any(k.endswith("_") and not k.startswith("__") for k in vars(estimator))


class Estimator(BaseEstimator):
    """Base class: scikit-learn's parameter handling plus nsprog's fitted-state rule.

    Subclasses list the attributes a successful fit sets in ``_fitted_attributes``; the
    estimator counts as fitted only when all of them are present.
    """

    _fitted_attributes: tuple[str, ...] = ()

    def __sklearn_is_fitted__(self) -> bool:
        names = self._fitted_attributes
        if not names:
            return any(k.endswith("_") and not k.startswith("__") for k in vars(self))
        return all(hasattr(self, n) for n in names)

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(...) first (a fit that failed "
                "leaves the estimator unfitted)"
            )

    def _set_fitted(self, **attributes) -> None:
        """Set the learned attributes all at once, at the end of a successful fit."""
        bad = [k for k in attributes if not k.endswith("_")]
        if bad:
            raise AssertionError(f"learned attributes must end in '_': {bad}")  # a bug in nsprog, not user input
        for name in self._fitted_attributes:
            if name in vars(self) and name not in attributes:
                delattr(self, name)
        for k, v in attributes.items():
            setattr(self, k, v)

    def _clear_fitted(self) -> None:
        """Forget a previous fit (called when a new fit starts, so a failure leaves no stale model)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)
