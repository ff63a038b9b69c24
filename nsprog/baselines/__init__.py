"""The paper's neural baselines (section 4.2 and appendix B.1), each a scikit-learn style
estimator with ``fit`` / ``predict`` (cluster ids) / ``transform`` (latent means). Every
trajectory baseline shares nsprog's TVAE encoder and decoder and its training loop.

``BASELINES`` maps the names used in table configs to the classes."""

from nsprog.baselines.base import TrajectoryBaseline, TVAESettings, fit_kmeans, kmeans_on_means
from nsprog.baselines.beta_tvae import BetaTVAE, BetaTVAESettings, beta_capacity_term
from nsprog.baselines.jointvae import JointVAE, JointVAESettings, categorical_kl, jointvae_capacity_terms
from nsprog.baselines.kmeans_tvae import KMeansTVAE, KMeansTVAESettings, cluster_indicator, kmeans_loss
from nsprog.baselines.random_assignment import RandomAssignment
from nsprog.baselines.tvae import TVAE, PlainTVAESettings
from nsprog.baselines.vq_tvae import VQTVAE, VQTVAESettings, nearest_code, vq_losses

#: table-config name -> baseline class (the paper's Table 1 rows, in its order)
BASELINES = {
    "random": RandomAssignment,
    "tvae": TVAE,
    "tvae_kmeans": KMeansTVAE,
    "jointvae": JointVAE,
    "vq_tvae": VQTVAE,
    "beta_tvae": BetaTVAE,
}

__all__ = [
    "BASELINES", "TrajectoryBaseline", "TVAESettings", "PlainTVAESettings", "TVAE", "KMeansTVAE", "KMeansTVAESettings",
    "JointVAE", "JointVAESettings", "VQTVAE", "VQTVAESettings", "BetaTVAE", "BetaTVAESettings", "RandomAssignment",
    "kmeans_loss", "cluster_indicator", "categorical_kl", "jointvae_capacity_terms", "beta_capacity_term",
    "nearest_code", "vq_losses", "fit_kmeans", "kmeans_on_means",
]
