"""trebalink: learned nsprog programs (or an expert's) as weak-supervision tasks for TREBA-style
trajectory embeddings.

Modules, in the order data flows through them: :mod:`trebalink.tasks` (tasks and task sets,
YAML), :mod:`trebalink.programs` (the task function table; expert, random and learned sets),
:mod:`trebalink.analysis` (coverage, balance, overlaps, conflicts), :mod:`trebalink.augment`
(vectorised augmentations), :mod:`trebalink.model` and :mod:`trebalink.losses` (the TREBA
model), :mod:`trebalink.train` (the two training stages, DDP-capable), :mod:`trebalink.fitting`
(prepare and train as library calls), :mod:`trebalink.run` (``trebalink train``'s run folder),
:mod:`trebalink.checkpoint` (the saved model), :mod:`trebalink.embed` (embeddings) and
:mod:`trebalink.estimator` (``TrebaEncoder``, the scikit-learn style estimator).
"""

from nsprog._version import __version__

__all__ = ["__version__"]
