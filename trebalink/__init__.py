"""trebalink: learned nsprog programs as weak-supervision tasks for TREBA-style embeddings."""

from nsprog._version import __version__

__all__ = ["__version__"]
