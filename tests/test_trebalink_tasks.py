"""trebalink task sets: the TREBA mouse tasks against values computed by hand on constructed
poses, the discretisation rule, YAML round trips, learned and random tasks, the analysis,
and the errors for bad task sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nsprog.data import Trajectories, synthetic_dataset
from trebalink.analysis import analyze
from trebalink.labelling import bind_tasks, fit_tasks
from trebalink.programs import task_set
from trebalink.programs.mouse import expert_tasks
from trebalink.programs.random_tasks import random_tasks
from trebalink.tasks import ABSTAIN, Task, TaskError, TaskSet, discretize, quantile_thresholds

KP = ["nose", "ear_left", "ear_right", "neck", "hip_left", "hip_right", "tail_base"]
LAYOUT = {"kind": "keypoints", "individuals": ["resident", "intruder"], "keypoints": KP, "dims": ["x", "y"],
          "order": ["individual", "keypoint", "dim"]}
#: a mouse facing +x: nose, ears, neck, hips, tail base (x, y) relative to its neck
SHAPE = np.array([[10, 0], [5, 3], [5, -3], [0, 0], [-10, 3], [-10, -3], [-20, 0]], np.float64)


def mouse_traj(frames: np.ndarray) -> Trajectories:
    """``frames [N, T, 2 mice, 7 keypoints, 2]`` as nsprog keypoint windows."""
    n, t = frames.shape[:2]
    return Trajectories(states=frames.reshape(n, t, -1).astype(np.float32), metadata={"layout": LAYOUT})


def rotate(shape, angle):
    c, s = math.cos(angle), math.sin(angle)
    return shape @ np.array([[c, -s], [s, c]]).T


@pytest.fixture
def two_mice():
    """21-frame windows with known quantities at the centre frame (10) and frames 8 and 12."""
    t = 21
    res = np.tile(SHAPE + [100.0, 100.0], (t, 1, 1))
    res[:, 0] = [100.0 + 10 * math.cos(0.3), 100.0 + 10 * math.sin(0.3)]  # head turned by +0.3 rad
    res[12:] += [6.0, 8.0]  # body moves 10 px between frames 8 and 12
    res[12:, 0] += [3.0, 4.0]  # ... and the nose 5 px more
    intr = np.tile(rotate(SHAPE, math.pi) + [200.0, 200.0], (t, 1, 1))  # facing -x, up and to the right
    intr[12:] += [18.0, 24.0]  # 30 px
    return mouse_traj(np.stack([res, intr], 1)[None])


def test_the_ten_mouse_tasks_match_values_computed_by_hand(two_mice):
    ts = expert_tasks()
    values, labels = bind_tasks(ts, two_mice).label_windows(two_mice)
    v = dict(zip(ts.names, values[0].tolist()))
    c = 10
    res = two_mice.states[0, c].reshape(2, 7, 2)[0].astype(np.float64)
    intr = two_mice.states[0, c].reshape(2, 7, 2)[1].astype(np.float64)
    # speed: centroid (mean of the 7 keypoints) moves (6, 8) plus the nose's extra (3, 4) / 7
    assert v["speed_resident"] == pytest.approx(math.hypot(6 + 3 / 7, 8 + 4 / 7), abs=1e-4)
    assert v["speed_intruder"] == pytest.approx(30.0, abs=1e-4)  # a rigid move
    # nose movement: nose displacement (9, 12) minus centroid displacement = (3, 4) * 6 / 7
    assert v["nose_movement_resident"] == pytest.approx(5.0 * 6 / 7, abs=1e-4)
    assert v["nose_movement_intruder"] == pytest.approx(0.0, abs=1e-4)
    assert v["nose_nose_distance"] == pytest.approx(np.linalg.norm(res[0] - intr[0]), abs=1e-3)
    assert v["nose_tail_distance"] == pytest.approx(np.linalg.norm(res[0] - intr[6]), abs=1e-3)
    # head-body angle atan2(det(v0, v1), v0 . v1), v0 = nose - neck, v1 = neck - tail base: -0.3 here
    assert v["head_body_angle_resident"] == pytest.approx(-0.3, abs=1e-5)
    assert v["head_body_angle_intruder"] == pytest.approx(0.0, abs=1e-5)
    # social angle: body axis (tail base -> neck) against the direction to the other centroid, in [0, pi]
    cr, ci = res.mean(0), intr.mean(0)
    to_i, to_r = ci - cr, cr - ci
    want_r = math.acos(np.dot([1, 0], to_i) / np.linalg.norm(to_i))  # resident faces +x
    want_i = math.acos(np.dot([-1, 0], to_r) / np.linalg.norm(to_r))  # intruder faces -x
    assert v["social_angle_resident"] == pytest.approx(want_r, abs=1e-5)
    assert v["social_angle_intruder"] == pytest.approx(want_i, abs=1e-5)
    # the reference's `% 2*pi` parses as `(x % 2) * pi` and gives another number for the same pose
    theta_bug = (math.atan2(cr[1] - ci[1], cr[0] - ci[0]) + 2 * math.pi) % 2 * math.pi
    assert abs(theta_bug % (2 * math.pi) - want_r) > 0.1
    # classes against TREBA's thresholds (speed 10, 20 px; nose movement 5, 8; head-body -0.5, 0.5)
    cls = dict(zip(ts.names, labels[0].tolist()))
    assert cls["speed_resident"] == 1 and cls["speed_intruder"] == 2
    assert cls["nose_movement_resident"] == 0 and cls["head_body_angle_resident"] == 1


def test_a_reflection_flips_the_head_body_angle_and_the_augmenter_relabels(two_mice):
    from trebalink.augment import AugmentSettings, Augmenter

    ts = TaskSet((Task("hb", "head_body_angle", {"individual": "resident"}, "categorical", (-0.2, 0.2)),
                  Task("dist", "nose_nose_distance", {}, "categorical", (60.0, 200.0))), domain="mouse")
    bound = bind_tasks(ts, two_mice)
    aug = Augmenter.fit(AugmentSettings(p_noise=0.0), two_mice)
    x = torch.from_numpy(two_mice.states)
    params = {"angle": torch.tensor([0.7], dtype=torch.float64), "reflect": torch.tensor([True]),
              "noisy": torch.tensor([False]), "noise": torch.zeros(1, 21, 28), "who": torch.tensor([0]),
              "shift": torch.zeros(1, 2)}
    xa = aug.apply(x, params)
    v, va = bound.values(x), bound.values(xa)
    assert va[0, 0].item() == pytest.approx(-v[0, 0].item(), abs=1e-4)  # the signed angle changes sign
    assert va[0, 1].item() == pytest.approx(v[0, 1].item(), rel=1e-5)  # distances are invariant
    assert bound.labels(x)[0, 0].item() == 0 and bound.labels(xa)[0, 0].item() == 2
    params["reflect"] = torch.tensor([False])
    assert bound.values(aug.apply(x, params))[0, 0].item() == pytest.approx(v[0, 0].item(), abs=1e-4)


def test_discretisation_rule_and_quantiles():
    thr = (0.0, 1.0)
    vals = np.array([-1.0, 0.0, 0.5, 1.0, 1.5, np.nan, np.inf])
    assert discretize(vals, thr).tolist() == [0, 0, 1, 1, 2, ABSTAIN, ABSTAIN]
    assert discretize(torch.tensor(vals), thr).tolist() == [0, 0, 1, 1, 2, ABSTAIN, ABSTAIN]
    assert quantile_thresholds(np.arange(100), 4) == pytest.approx((24.75, 49.5, 74.25))
    assert quantile_thresholds([1, 1, 1, 1, 2], 3) == (1.0,)  # ties merged
    with pytest.raises(TaskError, match=r"task 'c' \(field thresholds\): must be strictly increasing"):
        Task("c", "speed", {}, thresholds=(1.0, 0.0))
    with pytest.raises(TaskError, match="binary task has exactly one threshold"):
        Task("d", "speed", {}, "binary", (0.0, 1.0))
    with pytest.raises(TaskError, match="needs thresholds"):
        Task("e", "speed", {}, "categorical")


def test_fit_resolves_quantiles_records_them_and_drops_constant_tasks(caplog):
    d = synthetic_dataset(400, 50, 50, seed=3)
    ts = TaskSet((Task("speed", "feature", {"feature": "avg_speed", "reduce": "first"}, quantiles=3),
                  Task("same", "feature", {"feature": "final_x", "reduce": "last"}, "binary", (1e6,))),
                 domain="synthetic")
    fitted = fit_tasks(ts, d["train"])
    assert fitted.tasks.names == ["speed"] and fitted.dropped == ["same"]
    assert "useless as supervision" in caplog.text
    thr = fitted.tasks.tasks[0].thresholds
    assert thr == pytest.approx(quantile_thresholds(fitted.values[:, 0], 3))
    assert np.bincount(fitted.labels[:, 0]).tolist() == pytest.approx([133, 134, 133], abs=2)
    kept = fit_tasks(ts, d["train"], force=True)
    assert kept.tasks.names == ["speed", "same"]


def test_yaml_round_trip_and_errors_name_file_task_and_field(tmp_path, two_mice):
    ts = expert_tasks()
    path = ts.save(tmp_path / "mouse.yaml")
    back = TaskSet.load(path)
    assert back.to_dict()["tasks"] == ts.to_dict()["tasks"] and back.domain == "mouse"
    np.testing.assert_array_equal(bind_tasks(back, two_mice).label_windows(two_mice)[1],
                                  bind_tasks(ts, two_mice).label_windows(two_mice)[1])
    text = path.read_text().replace("- 10.0\n  - 20.0", "- 20.0\n  - 10.0", 1)
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(TaskError, match=r"bad\.yaml: task 'speed_resident' \(tasks\[0\]\.thresholds\): must be strictly"):
        TaskSet.load(tmp_path / "bad.yaml")
    # a keypoint the data lacks: the error names the file, the task, the field and the keypoint
    custom = TaskSet.load(path)
    custom = TaskSet(custom.tasks, domain="mouse", domain_params={"keypoints": {**{k: k for k in KP}, "nose": "snout"}},
                     source=str(path))
    with pytest.raises(TaskError, match=r"mouse\.yaml: task 'nose_movement_resident' \(tasks\[4\]\.fn\).*'nose'.*snout"):
        bind_tasks(custom, two_mice)
    unknown = TaskSet((Task("x", "spede", {}, thresholds=(1.0,)),), domain="mouse", source="t.yaml")
    with pytest.raises(TaskError, match=r"t\.yaml: task 'x' \(tasks\[0\]\.args\): unknown task function 'spede'"):
        bind_tasks(unknown, two_mice)
    extra = TaskSet((Task("x", "speed", {"who": "resident"}, thresholds=(1.0,)),), domain="mouse")
    with pytest.raises(TaskError, match=r"has no argument\(s\) \['who'\]"):
        bind_tasks(extra, two_mice)
    with pytest.raises(TaskError, match="unknown field"):
        TaskSet.from_dict({"format": "trebalink-tasks", "tasks": [], "extra": 1}, source="f.yaml")


def test_learned_programs_export_to_tasks_that_match_the_programs(tmp_path, capsys):
    from nsprog.dsl import Affine, MapAverage, Sig, Type, load_dsl
    from nsprog.features.pipeline import FeaturePipeline
    from nsprog.programs import ProgramSet
    from trebalink.programs.learned import export_tasks

    dsl = load_dsl("synthetic")
    la, aa = Sig(Type("list", 4), Type("atom", 1)), Sig(Type("atom", 4), Type("atom", 1))
    d = synthetic_dataset(300, 50, 100, seed=2)
    pipe = FeaturePipeline.for_dsl(dsl)
    pipe.fit(d["train"])
    prog = MapAverage(la, fn=Affine(aa, library="FinalX", features=("final_x",),
                                    params={"weight": [[2.0]], "bias": [0.1]}))
    pset = ProgramSet(dsl, pipe, {"program_1": prog}, {"program_1": [0, 1]})
    pset.save(tmp_path / "run" / "programs.json")
    ts = export_tasks(tmp_path / "run", classes=2)
    assert ts.tasks[0].provenance["run"] == str((tmp_path / "run").resolve())
    assert "FinalX" in ts.tasks[0].provenance["program"]
    back = TaskSet.load(ts.save(tmp_path / "learned.yaml"))
    labels = bind_tasks(back, d["test"]).label_windows(d["test"])[1][:, 0]
    np.testing.assert_array_equal(labels, pset.predict(d["test"])["program_1"])
    three = fit_tasks(export_tasks(tmp_path / "run", classes=3), d["train"]).tasks
    assert len(three.tasks[0].thresholds) == 2 and three.tasks[0].kind == "categorical"
    # trebalink label says nothing about certification unless it was asked for
    from nsprog.data import save_dataset
    from trebalink.cli import main

    data = save_dataset(tmp_path / "d.h5", d)
    assert main(["label", str(tmp_path / "run"), "--data", str(data), "--out", str(tmp_path / "l.h5")]) == 0
    out = capsys.readouterr().out
    assert "program_1" in out and "coverage 1.000" in out and "certified" not in out


def test_random_tasks_are_seeded_and_fitted_on_the_training_split():
    d = synthetic_dataset(300, 50, 50, seed=4)
    a = fit_tasks(random_tasks(3, 3, seed=1), d["train"]).tasks
    b = fit_tasks(task_set("random:3:3", seed=1), d["train"]).tasks
    c = fit_tasks(random_tasks(3, 3, seed=2), d["train"]).tasks
    la, lb, lc = (bind_tasks(t, d["test"]).label_windows(d["test"])[1] for t in (a, b, c))
    np.testing.assert_array_equal(la, lb)
    assert (la != lc).any()
    assert a.tasks[0].args["frames"] == 25 and len(a.tasks[0].args["mean"]) == 2
    with pytest.raises(TaskError, match="fitted on windows of 25 frames x 2 dims"):
        bind_tasks(a, Trajectories(states=np.zeros((2, 10, 2), np.float32)))


def test_analysis_by_hand():
    tasks = [Task("a", "f", {}, thresholds=(0.0, 1.0), label_space="label"),
             Task("b", "f", {}, thresholds=(0.0, 1.0), label_space="label"),
             Task("c", "f", {}, "binary", (0.0,))]
    labels = np.array([[1, 1, 0], [0, 2, 1], [2, ABSTAIN, 1], [ABSTAIN, 0, 0]])
    values = np.where(labels == ABSTAIN, np.nan, labels.astype(float))
    gold = {"label": np.array([1, 0, 2, 0]), "other": np.array([0, 1, 1, 0])}
    rep = analyze(tasks, values, labels, gold)
    a, b, c = rep.per_task
    assert a["coverage"] == 0.75 and b["coverage"] == 0.75 and c["coverage"] == 1.0
    assert a["overlaps"] == 0.75 and c["overlaps"] == 1.0
    assert a["conflicts"] == 0.25 and b["conflicts"] == 0.25  # window 1: 0 vs 2
    assert c["conflicts"] is None  # c shares no label space
    assert a["accuracy"] == {"label": 1.0} and b["accuracy"] == {"label": 2 / 3}
    assert c["association"]["other"]["purity"] == 1.0
    assert rep.overlap[0, 1] == 0.5 and np.isnan(rep.conflict[0, 2]) and rep.conflict[0, 1] == 0.25
    assert a["class_balance"] == pytest.approx([1 / 3, 1 / 3, 1 / 3], abs=1e-4)
    assert "label_space" in " ".join(rep.notes)
    assert "coverage 0.750" in rep.to_text()
