"""nsprog: neurosymbolic encoders for trajectory data.

A trajectory VAE whose latent is part neural and part short, human-readable programs in
a domain language chosen by an expert, found by NEAR-style program synthesis.
"""

from nsprog._version import __version__

__all__ = ["__version__"]
