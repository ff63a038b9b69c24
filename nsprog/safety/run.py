"""One ``nsprog safety run``: data, training, verification, measurements and files.

Writes into the run folder: ``config.yaml``, ``run.json``, ``log.txt`` (via
:func:`nsprog.runs.start_run`), ``metrics.json``, ``params.pt`` (the trained networks'
state dicts, loadable with ``torch.load(..., weights_only=True)``), ``history.csv`` and
``trajectories.png``.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import torch

from nsprog.runs import Run, check_out_folder, start_run
from nsprog.safety.benchmarks import Benchmark, get_benchmark
from nsprog.safety.config import MODES, SafetyRunConfig
from nsprog.safety.data import TEST_SEED, VAL_SEED_OFFSET, data_loss, generate_data
from nsprog.safety.train import train, training_boxes
from nsprog.safety.verify import check_verifier_size, empirical_unsafe, verify
from nsprog.utils import limit_threads, load_torch_file, resolve_device, seed_everything, torch_save_atomic

__all__ = ["run_safety", "save_params", "load_params", "validate_run_config"]

log = logging.getLogger("nsprog.safety")


def save_params(path: str | Path, bench: Benchmark, modules: dict, extra: dict | None = None) -> Path:
    """Atomically write ``{"benchmark", "modules": {name: state_dict}, ...}`` (tensors and plain data only)."""
    obj = {
        "benchmark": bench.name,
        "modules": {k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in modules.items()},
    }
    obj.update(extra or {})
    return torch_save_atomic(obj, path)


def load_params(path: str | Path) -> tuple[Benchmark, dict, dict]:
    """(benchmark, modules with the saved weights, the whole saved dict); uses ``weights_only=True``."""
    path = Path(path)
    if path.is_dir():
        path = path / "params.pt"
    obj = load_torch_file(path, "nsprog safety parameters file (the params.pt of an `nsprog safety run`)")
    if not isinstance(obj, dict) or "benchmark" not in obj or not isinstance(obj.get("modules"), dict):
        raise ValueError(f"{path} is not the params.pt of an `nsprog safety run` (no 'benchmark' and 'modules')")
    bench = get_benchmark(obj["benchmark"])
    modules = bench.make_modules()
    for k, m in modules.items():
        if k not in obj["modules"]:
            raise KeyError(f"{path} has no weights for module {k!r} of benchmark {bench.name!r}")
        try:
            m.load_state_dict(obj["modules"][k])
        except RuntimeError as exc:
            raise ValueError(f"{path}: the weights of module {k!r} do not fit benchmark {bench.name!r} "
                             f"({str(exc).splitlines()[0]})") from None
    return bench, modules, obj


def validate_run_config(cfg: SafetyRunConfig) -> tuple[Benchmark, int]:
    """Check everything that could fail later before any work: benchmark, mode, sizes, verifier memory."""
    bench = get_benchmark(cfg.benchmark)
    if cfg.mode not in MODES:
        raise ValueError(f"unknown mode {cfg.mode!r}; valid modes: {', '.join(MODES)}")
    per_dim = cfg.verify.components or bench.defaults["verifier_components"]
    max_mem = int(cfg.verify.max_memory_gb * 2**30) if cfg.verify.max_memory_gb else None
    itemsize = 8 if cfg.verify.dtype == "float64" else 4
    check_verifier_size(bench, bench.make_modules(), per_dim, cfg.verify.chunk, max_mem, itemsize)
    training_boxes(bench, cfg.mode, cfg.train)  # component counts
    return bench, per_dim


def run_safety(cfg: SafetyRunConfig, out: str | Path | None = None, force: bool = False, root: str | Path = "runs",
               progress: bool = False) -> tuple[Path, dict]:
    """Run one benchmark in one mode; returns (run folder, metrics). Uses ``cfg.threads``
    threads while it runs."""
    with limit_threads(cfg.threads):
        return _run_safety(cfg, out, force, root, progress)


def _run_safety(cfg: SafetyRunConfig, out, force: bool, root, progress: bool) -> tuple[Path, dict]:
    t_wall = time.perf_counter()
    bench, per_dim = validate_run_config(cfg)
    device = resolve_device(cfg.device)
    if device.type != "cpu":
        log.warning("nsprog safety runs on CPU (tiny models); device %s is ignored", device)
    check_out_folder(out, force)
    run: Run = start_run(f"safety-{bench.name}-{cfg.mode}", cfg, cfg.seed, out=out, force=force, root=root,
                         extra={"benchmark": bench.name, "mode": cfg.mode, "threads": torch.get_num_threads()})
    with run:
        seed_everything(cfg.seed)
        train_data = generate_data(bench, cfg.train_size, seed=cfg.seed)
        val_data = generate_data(bench, cfg.train.val_trajectories, seed=cfg.seed + VAL_SEED_OFFSET)
        test_data = generate_data(bench, cfg.verify.test_trajectories, seed=TEST_SEED)
        log.info("%s: %d training pairs from %d trajectories; %d validation pairs; %d test pairs", bench.name,
                 train_data.n_pairs, cfg.train_size, val_data.n_pairs, test_data.n_pairs)
        seed_everything(cfg.seed)
        result = train(bench, cfg.mode, cfg.train, train_data, val_data, seed=cfg.seed, progress=progress)
        modules = result.modules
        dtype = torch.float64 if cfg.verify.dtype == "float64" else torch.float32
        max_mem = int(cfg.verify.max_memory_gb * 2**30) if cfg.verify.max_memory_gb else None
        vres = verify(bench, modules, per_dim, chunk=cfg.verify.chunk, dtype=dtype, tol=cfg.verify.tolerance,
                      max_memory=max_mem, progress=progress)
        emp = empirical_unsafe(bench, modules, cfg.verify.empirical_samples, seed=cfg.seed + 7, dtype=dtype,
                               tol=cfg.verify.tolerance)
        with torch.no_grad():
            test_loss = float(data_loss(modules, test_data))
            train_loss = float(data_loss(modules, train_data))
        metrics = {
            "benchmark": bench.name,
            "mode": cfg.mode,
            "seed": cfg.seed,
            "train_size": cfg.train_size,
            "steps": result.steps,
            "provably_safe": vres.provably_safe,
            "verifier_pieces": vres.pieces,
            "verifier_components_per_dim": per_dim,
            "empirical_unsafe": emp,
            "empirical_samples": cfg.verify.empirical_samples,
            "test_data_loss": test_loss,
            "train_data_loss": train_loss,
            "test_trajectories": cfg.verify.test_trajectories,
            "best_step": result.best_step,
            "selected_by": result.selected_by,
            "val_provably_safe": next((h["val_safe"] for h in result.history if h["step"] == result.best_step), None),
            "val_data_loss": next((h["val_data"] for h in result.history if h["step"] == result.best_step), None),
            "train_seconds": result.seconds,
            "steps_per_second": result.steps_per_second,
            "verify_seconds": vres.seconds,
            "verifier_pieces_per_second": vres.pieces_per_second,
            "threads": torch.get_num_threads(),
        }
        save_params(run.path / "params.pt", bench, modules, {"mode": cfg.mode, "seed": cfg.seed})
        if result.history:
            _write_history(run.path / "history.csv", result.history)
        if cfg.plot:
            from nsprog.safety.plots import plot_trajectories

            plot_trajectories(bench, modules, run.path / "trajectories.png", verifier_components=per_dim,
                              title=f"{bench.name} / {cfg.mode} (n={cfg.train_size}, seed {cfg.seed}): "
                                    f"provably safe {vres.provably_safe:.4f}")
        metrics["wall_seconds"] = time.perf_counter() - t_wall
        run.write_json("metrics.json", metrics)
        log.info("%s/%s seed %d: provably safe %.4f (%d pieces), empirical unsafe %.4f, test data loss %.4g, "
                 "%.1f steps/s, %.1f s", bench.name, cfg.mode, cfg.seed, vres.provably_safe, vres.pieces, emp,
                 test_loss, result.steps_per_second, metrics["wall_seconds"])
    return run.path, metrics


def _write_history(path: Path, rows: list[dict]) -> None:
    from nsprog.utils import atomic_write

    def write(p: Path) -> None:
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)
