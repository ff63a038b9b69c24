"""Trajectory data layer: recordings and their loaders, windows, splits, normalisation, file io
and the synthetic set."""

from nsprog.data.annotations import bouts_to_frames, load_annotations
from nsprog.data.convert import WindowOptions, load_windows, split_windows
from nsprog.data.io import DatasetFileError, export_npz, load_dataset, save_dataset
from nsprog.data.loaders import FORMATS, FormatError, detect_format, list_formats, load_recording, load_recordings
from nsprog.data.missing import RepairReport, interpolate_gaps, repair_arrays
from nsprog.data.recording import NoWindowsError, Recording, RecordingError, recordings_to_trajectories, repair_missing
from nsprog.data.teams import FIELD_PRESETS, FieldSpec, get_field, recordings_to_team_windows, team_windows
from nsprog.data.normalize import Normalizer
from nsprog.data.splits import split_by_group, split_by_time, split_random
from nsprog.data.synthetic import generate_synthetic, oracle_clusters, synthetic_dataset
from nsprog.data.trajectories import Trajectories
from nsprog.data.windows import cut_windows, reduce_frame_labels, window_starts

__all__ = [
    "Recording",
    "RecordingError",
    "NoWindowsError",
    "recordings_to_trajectories",
    "FORMATS",
    "FormatError",
    "list_formats",
    "detect_format",
    "load_recording",
    "load_recordings",
    "load_annotations",
    "bouts_to_frames",
    "repair_missing",
    "repair_arrays",
    "interpolate_gaps",
    "RepairReport",
    "FieldSpec",
    "FIELD_PRESETS",
    "get_field",
    "team_windows",
    "recordings_to_team_windows",
    "WindowOptions",
    "load_windows",
    "split_windows",
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
