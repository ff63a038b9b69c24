"""Data-efficiency experiments (the paper's Figure 5): do programs that nsprog learns serve as
well as an expert's as supervision for behaviour classifiers when labels are scarce?

``trebalink classify CONFIG --out DIR`` (:func:`~trebalink.efficiency.harness.run_classify`)
learns the programs (nsprog fits), trains TREBA embeddings per condition (no tasks, random
tasks, the expert set, 1-3 learned programs), then trains a classifier per behaviour on
nested contiguous samples of 1-100% of the training labels, 9 repeats each, and writes
``results.csv``, ``table.md`` and ``figure.png``. Modules, in the order data flows:

* :mod:`~trebalink.efficiency.config`: the config (conditions, fits, fractions, classifiers);
* :mod:`~trebalink.efficiency.steps`: the fit and TREBA jobs, labels and features;
* :mod:`~trebalink.efficiency.sampling`: nested contiguous label samples;
* :mod:`~trebalink.efficiency.classifiers`: :class:`BehaviourMLP`, :class:`LinearProbe`;
* :mod:`~trebalink.efficiency.metrics`: average precision, F1, error, the one-class flag;
* :mod:`~trebalink.efficiency.cells`: one classifier x condition x fraction x repeat;
* :mod:`~trebalink.efficiency.harness`: the run (executor seam, resume);
* :mod:`~trebalink.efficiency.report`, :mod:`~trebalink.efficiency.plots`: tables and figure.
"""

from trebalink.efficiency.classifiers import BehaviourMLP, LinearProbe
from trebalink.efficiency.config import ClassifyConfig, load_classify_config

__all__ = ["BehaviourMLP", "LinearProbe", "ClassifyConfig", "load_classify_config", "run_classify"]


def __getattr__(name):
    if name == "run_classify":
        from trebalink.efficiency.harness import run_classify

        return run_classify
    raise AttributeError(name)
