"""Feature registry: the explicit table of domains (name -> factory).

Domains are listed in ``DOMAINS``; there is no registration by import side effect. The
base types live in :mod:`nsprog.features.base`, which the domain modules import, so this
table imports the domains directly (no import cycle).
"""

from __future__ import annotations

from typing import Callable

from nsprog.features.base import Domain, Feature, FeatureScaler
from nsprog.features.mouse import mouse_domain, openfield_domain
from nsprog.features.synthetic import synthetic_domain
from nsprog.features.team import team_domain

__all__ = ["Feature", "Domain", "FeatureScaler", "DOMAINS", "get_domain", "list_domains"]


#: name -> factory(**params) -> Domain. Add new domains here explicitly.
#: mouse: keypoints (preset name, "auto" or {canonical: file name(s)}), resident, intruder.
#: openfield: keypoints, individual, arena (x0, y0, x1, y1) or None for the corner keypoints.
#: team: preset (basketball, soccer), field_length, field_width, target, players_per_team, fps,
#:       min_players, sharpness.
DOMAINS: dict[str, Callable[..., Domain]] = {
    "synthetic": synthetic_domain,
    "mouse": mouse_domain,
    "openfield": openfield_domain,
    "team": team_domain,
}


def list_domains() -> list[str]:
    return sorted(DOMAINS)


def get_domain(name: str, **params) -> Domain:
    """Build the domain called ``name`` with its parameters."""
    if name not in DOMAINS:
        raise KeyError(f"unknown feature domain {name!r}; available: {', '.join(list_domains())}")
    return DOMAINS[name](**params)
