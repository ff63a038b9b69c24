"""Evaluation: cluster metrics, read-outs, oracle ceilings, scoring of fitted encoders and
figures. Imported by the command line, the experiments and the benchmarks alike."""

from nsprog.evaluation.metrics import ari, cluster_metrics, nmi, purity, rand_index
from nsprog.evaluation.ceiling import labelled_mask, supervised_ceiling
from nsprog.evaluation.oracle import has_oracle, oracle_metrics, oracle_program_clusters
from nsprog.evaluation.readouts import agreement, knn_readout, linear_readout
from nsprog.evaluation.scoring import EvalSettings, score_encoder, usable_factors

__all__ = ["cluster_metrics", "purity", "nmi", "rand_index", "ari", "agreement", "linear_readout", "knn_readout",
           "has_oracle", "oracle_metrics", "oracle_program_clusters", "supervised_ceiling", "labelled_mask", "EvalSettings", "score_encoder", "usable_factors"]
