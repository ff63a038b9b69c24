"""Trajectory data layer: windows, splits, normalisation, file io and the synthetic set."""

from nsprog.data.io import DatasetFileError, export_npz, load_dataset, save_dataset
from nsprog.data.normalize import Normalizer
from nsprog.data.splits import split_by_group, split_by_time, split_random
from nsprog.data.synthetic import generate_synthetic, oracle_clusters, synthetic_dataset
from nsprog.data.trajectories import Trajectories
from nsprog.data.windows import cut_windows, reduce_frame_labels, window_starts

__all__ = [
    "Trajectories",
    "cut_windows",
    "window_starts",
    "reduce_frame_labels",
    "split_random",
    "split_by_group",
    "split_by_time",
    "Normalizer",
    "save_dataset",
    "load_dataset",
    "export_npz",
    "DatasetFileError",
    "generate_synthetic",
    "synthetic_dataset",
    "oracle_clusters",
]
