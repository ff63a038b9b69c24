"""Neurosymbolic encoders: Algorithms 1 and 2 of the paper behind an estimator.

- :mod:`~nsprog.encoder.estimator`: :class:`NeurosymbolicEncoder` (the API);
- :mod:`~nsprog.encoder.settings`, :mod:`~nsprog.encoder.presets`: what defines a fit;
- :mod:`~nsprog.encoder.fitting`: one fit from start to finish;
- :mod:`~nsprog.encoder.algorithm`: the rounds of Algorithms 1 and 2 over
  :class:`~nsprog.encoder.state.AlgorithmState`;
- :mod:`~nsprog.encoder.trainer`: the VAE epoch loop;
- :mod:`~nsprog.encoder.distill`: distillation and the neural-latent start of a program;
- :mod:`~nsprog.encoder.checkpoint`: the one saved form;
- :mod:`nsprog.seeds`: named random streams (shared with the baselines and trebalink).
"""

from nsprog.encoder.checkpoint import CheckpointError
from nsprog.encoder.estimator import NeurosymbolicEncoder
from nsprog.encoder.presets import PRESETS, list_presets, preset_config
from nsprog.encoder.settings import DistillSettings, EncoderConfig, LearnerSettings
from nsprog.encoder.trainer import TrainingError

__all__ = ["NeurosymbolicEncoder", "EncoderConfig", "LearnerSettings", "DistillSettings", "TrainingError",
           "CheckpointError", "PRESETS", "list_presets", "preset_config"]
