"""Cluster-metric tables (the paper's Tables 1-3): every model x seed (x fold, x cluster
count) as an independent cell run through :mod:`nsprog.executors`, resumable, reported as
``results.csv``, ``table.md`` and ``table.png``. ``nsprog table CONFIG`` is
:func:`run_table` on :func:`load_table_config`."""

from nsprog.tables.cells import Cell, plan_cells, run_cell
from nsprog.tables.config import MODELS, ModelSpec, TableConfig, config_hash, load_table_config
from nsprog.tables.harness import TableRun, check_table_inputs, run_table, table_status
from nsprog.tables.report import collect_results, write_report

__all__ = ["MODELS", "ModelSpec", "TableConfig", "load_table_config", "config_hash", "Cell", "plan_cells", "run_cell",
           "TableRun", "run_table", "check_table_inputs", "table_status", "collect_results", "write_report"]
