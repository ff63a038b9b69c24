"""Deprecated location of the encoder: use :mod:`nsprog.encoder` (kept for one release)."""

import warnings

from nsprog.encoder import EncoderConfig, LearnerSettings, NeurosymbolicEncoder, TrainingError
from nsprog.encoder.checkpoint import FORMAT as CHECKPOINT_FORMAT

__all__ = ["LearnerSettings", "EncoderConfig", "NeurosymbolicEncoder", "TrainingError", "CHECKPOINT_FORMAT"]

warnings.warn("nsprog.learner is deprecated; import from nsprog.encoder instead", DeprecationWarning, stacklevel=2)
