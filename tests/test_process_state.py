"""Importing nsprog, loading its native kernel and fitting leave the user's process alone:
subnormal numbers survive, no plotting backend is chosen, thread counts and random state come
back after a fit. Runs in a fresh interpreter, so nothing loaded earlier hides a change."""

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_subnormals_survive_loading_every_nsprog_module_and_the_native_kernel():
    out = _run("""
        import importlib, pkgutil, numpy as np
        import nsprog, trebalink
        names = [m.name for pkg in (nsprog, trebalink)
                 for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
        for name in names:
            if name != "nsprog.learner" and not name.endswith("__main__"):  # shim warns; __main__ runs the CLI
                importlib.import_module(name)
        from nsprog import native
        lib = native.load()
        import torch
        from nsprog.gru_kernel import gru
        g = torch.nn.GRU(2, 3, batch_first=True)
        gru(torch.randn(2, 4, 2), None, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
        tiny = np.finfo(np.float64).smallest_subnormal
        assert np.float64(1e-310) * 1.0 != 0, "float64 subnormals flushed to zero"
        assert np.float32(1e-40) * np.float32(1.0) != 0, "float32 subnormals flushed to zero"
        assert tiny * 1.0 == tiny and np.finfo(np.float32).smallest_subnormal * np.float32(1) != 0
        assert torch.tensor(1e-40, dtype=torch.float32).mul(1.0).item() != 0
        print(len(names), lib is not None)
    """)
    n, native_loaded = out.split()
    assert int(n) > 50


def test_import_selects_no_plotting_backend():
    out = _run("""
        import matplotlib
        before = matplotlib.rcParams._get("backend") if hasattr(matplotlib.rcParams, "_get") else matplotlib.rcParams["backend"]
        import nsprog.evaluation.plots, nsprog.safety.plots, nsprog.figures
        after = matplotlib.rcParams._get("backend") if hasattr(matplotlib.rcParams, "_get") else matplotlib.rcParams["backend"]
        print(before == after)
    """)
    assert out.split() == ["True"]


def test_a_fit_restores_threads_and_leaves_the_global_random_state_alone():
    out = _run("""
        import torch, numpy as np
        from threadpoolctl import threadpool_info
        torch.set_num_threads(2)
        from nsprog.data import synthetic_dataset
        from nsprog.encoder import NeurosymbolicEncoder
        from nsprog.search import SearchSettings
        data = synthetic_dataset(120, 60, 60, seed=1)
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        blas = [i["num_threads"] for i in threadpool_info()]
        enc = NeurosymbolicEncoder(n_programs=1, vae={"epochs": 1}, search={"neural_epochs": 1, "symbolic_epochs": 1},
                                   learner={"min_distill_f1": 0.0}, progress=False, threads=1)
        enc.fit(data["train"], data["val"])
        print(torch.get_num_threads(), torch.equal(torch.rand(3), expected),
              blas == [i["num_threads"] for i in threadpool_info()])
    """)
    assert out.split() == ["2", "True", "True"]
