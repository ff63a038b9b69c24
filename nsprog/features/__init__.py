"""Named, vectorised domain features and their registry."""

from nsprog.features.registry import DOMAINS, Domain, Feature, FeatureScaler, get_domain, list_domains

__all__ = ["DOMAINS", "Domain", "Feature", "FeatureScaler", "get_domain", "list_domains"]
