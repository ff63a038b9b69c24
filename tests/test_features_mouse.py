"""Mouse and open-field features against values computed by hand."""

import math

import numpy as np
import pytest
import torch

from nsprog.data.loaders import load_recording
from nsprog.data.trajectories import Trajectories
from nsprog.features import get_domain, list_domains
from nsprog.features.mouse import (
    DSL1_FEATURES, DSL2_FEATURES, DSL3_FEATURES, bbox_iou, ellipse_axes, head_body_angle, resolve_mapping, social_angle,
)

CALMS = ["nose", "ear_left", "ear_right", "neck", "hip_left", "hip_right", "tail_base"]


def _mouse(cx, cy, scale=1.0):
    """A CalMS21-style mouse facing +x whose 7 keypoints average to (cx, cy)."""
    pts = np.array([[3, 0], [2, 1], [2, -1], [1, 0], [-2, 1], [-2, -1], [-4, 0]], np.float32) * scale
    pts = pts - pts.mean(0)
    return pts + np.array([cx, cy], np.float32)


def _traj(poses, keypoints=CALMS, individuals=("resident", "intruder")):
    """poses: [N, T, I, K, 2] -> keypoint windows with a layout."""
    poses = np.asarray(poses, np.float32)
    if poses.shape[1] == 1:  # windows need >= 2 frames: repeat a still pose
        poses = np.repeat(poses, 2, axis=1)
    n, t = poses.shape[:2]
    layout = {"kind": "keypoints", "individuals": list(individuals), "keypoints": list(keypoints), "dims": ["x", "y"]}
    return Trajectories(states=poses.reshape(n, t, -1), metadata={"layout": layout})


def test_domains_are_registered():
    assert {"mouse", "openfield", "team", "synthetic"} <= set(list_domains())
    mouse = get_domain("mouse")
    for name in set(DSL1_FEATURES) | set(DSL2_FEATURES) | set(DSL3_FEATURES):
        assert name in mouse.features, name


def test_head_body_angle_right_angles():
    neck = torch.tensor([[0.0, 0.0]])
    tail = torch.tensor([[-1.0, 0.0]])
    ahead = head_body_angle(torch.tensor([[1.0, 0.0]]), neck, tail)
    left = head_body_angle(torch.tensor([[0.0, 1.0]]), neck, tail)
    right = head_body_angle(torch.tensor([[0.0, -1.0]]), neck, tail)
    assert ahead.item() == pytest.approx(0.0)
    # v0 = (0, 1), v1 = (1, 0): det = 0*0 - 1*1 = -1, dot = 0 -> atan2(-1, 0) = -pi/2
    assert left.item() == pytest.approx(-math.pi / 2)
    assert right.item() == pytest.approx(math.pi / 2)


def test_social_angle_folds_to_zero_pi():
    neck, tail, me = torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    cases = {(5.0, 0.0): 0.0, (-5.0, 0.0): math.pi, (0.0, 5.0): math.pi / 2, (0.0, -5.0): math.pi / 2,
             (5.0, -5.0): math.pi / 4, (-5.0, -5.0): 3 * math.pi / 4}
    for other, expected in cases.items():
        got = social_angle(neck, tail, me, torch.tensor([other])).item()
        # the reference's `% 2*pi` would give ((x % 2) * pi), e.g. 1.35 instead of pi/2 for (0, -5)
        assert got == pytest.approx(expected, abs=1e-6), other


def test_ellipse_and_iou_primitives():
    pts = torch.tensor([[[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]])
    l1, l2 = ellipse_axes(pts)
    assert l1.item() == pytest.approx(2.0) and l2.item() == pytest.approx(0.5)
    sq = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]]])
    assert bbox_iou(sq, sq).item() == pytest.approx(1.0)
    assert bbox_iou(sq, sq + torch.tensor([0.5, 0.0])).item() == pytest.approx(1 / 3)
    assert bbox_iou(sq, sq + torch.tensor([0.5, 0.5])).item() == pytest.approx(0.25 / 1.75)
    assert bbox_iou(sq, sq + 3.0).item() == 0.0


def test_mouse_domain_hand_values():
    t = 4
    poses = np.zeros((1, t, 2, 7, 2), np.float32)
    for f in range(t):
        poses[0, f, 0] = _mouse(3.0 * f, 4.0 * f)  # resident moves (3, 4) per frame
        poses[0, f, 1] = _mouse(100.0, 0.0)  # intruder still, far ahead on +x
    d = get_domain("mouse")
    traj = _traj(poses)
    feats = d.compute(traj)
    col = {n: feats[0, :, i] for i, n in enumerate(d.feature_names)}
    torch.testing.assert_close(col["resident_speed"], torch.full((t,), 5.0))
    torch.testing.assert_close(col["intruder_speed"], torch.zeros(t))
    torch.testing.assert_close(col["resident_acceleration"], torch.zeros(t), atol=1e-4, rtol=0)
    torch.testing.assert_close(col["resident_head_body_angle"], torch.zeros(t))
    # intruder faces +x, the resident is behind it: social angle pi; frame 0: resident at (0, 0) faces the intruder
    assert col["intruder_social_angle"][0].item() == pytest.approx(math.pi, abs=1e-5)
    assert col["resident_social_angle"][0].item() == pytest.approx(0.0, abs=1e-5)
    res_nose = poses[0, 0, 0, 0]
    int_nose, int_tail = poses[0, 0, 1, 0], poses[0, 0, 1, 6]
    assert col["nose_nose_distance"][0].item() == pytest.approx(float(np.linalg.norm(res_nose - int_nose)), rel=1e-5)
    assert col["nose_tail_distance"][0].item() == pytest.approx(float(np.linalg.norm(res_nose - int_tail)), rel=1e-5)
    assert col["centroid_distance"][0].item() == pytest.approx(100.0, rel=1e-5)
    assert col["bbox_iou"][0].item() == 0.0
    # a uniformly scaled mouse: axis ratio unchanged, area x 4
    poses2 = poses.copy()
    poses2[0, :, 1] = _mouse(100.0, 0.0, scale=2.0)
    f2 = d.compute(_traj(poses2), ["resident_axis_ratio", "intruder_axis_ratio", "resident_ellipse_area", "intruder_ellipse_area"])
    assert f2[0, 0, 1].item() == pytest.approx(f2[0, 0, 0].item(), rel=1e-5)
    assert f2[0, 0, 3].item() == pytest.approx(4 * f2[0, 0, 2].item(), rel=1e-4)


def test_head_body_and_distances_known_geometry():
    """Head turned 90 degrees, known nose-nose and nose-tail distances."""
    pose = np.zeros((1, 1, 2, 7, 2), np.float32)
    pose[0, 0, 0] = [[0, 1], [-0.5, 0.5], [0.5, 0.5], [0, 0], [-1, -1], [1, -1], [-1, 0]]  # nose up, body along +x
    pose[0, 0, 1] = [[3, 5], [3, 6], [4, 6], [4, 5], [5, 6], [6, 7], [6, 9]]  # nose (3, 5), tail base (6, 9)
    d = get_domain("mouse", keypoints="calms21")
    f = d.compute(_traj(pose), ["resident_head_body_angle", "nose_nose_distance", "nose_tail_distance"])
    assert f[0, 0, 0].item() == pytest.approx(-math.pi / 2)
    assert f[0, 0, 1].item() == pytest.approx(5.0)
    assert f[0, 0, 2].item() == pytest.approx(10.0)


def test_unit_square_iou_through_the_domain():
    sq = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5], [0.2, 0.8], [0.9, 0.1]], np.float32)
    pose = np.stack([sq, sq + [0.5, 0.0]])[None, None]
    pose = np.concatenate([pose, np.stack([sq, sq])[None, None]], axis=0)
    f = get_domain("mouse").compute(_traj(pose), ["bbox_iou"])
    assert f[0, 0, 0].item() == pytest.approx(1 / 3) and f[1, 0, 0].item() == pytest.approx(1.0)


def test_missing_keypoint_error_names_feature_and_keypoint():
    kps = ["Ear_left", "Ear_right", "Center", "Tail_base"]  # CRIM13-like without the nose
    traj = _traj(np.random.default_rng(0).uniform(size=(2, 3, 2, 4, 2)), keypoints=kps)
    d = get_domain("mouse", keypoints="crim13")
    with pytest.raises(ValueError, match=r"feature 'resident_head_body_angle' needs keypoint 'nose'.*lacks \['Nose'\]"):
        d.compute(traj, ["resident_head_body_angle"])
    d.compute(traj, ["resident_speed"])  # features that need only what is there still work
    with pytest.raises(ValueError, match=r"needs keypoint 'corner_tl'"):
        get_domain("openfield", keypoints="calms21").compute(_traj(np.ones((1, 2, 1, 7, 2)), individuals=["m"]), ["wall_distance"])
    with pytest.raises(KeyError, match="unknown keypoint preset 'dlc'"):
        get_domain("mouse", keypoints="dlc").compute(traj)


def test_presets_and_derived_points():
    assert resolve_mapping("auto", CALMS)[0] == "calms21"
    crim = ["Ear_left", "Ear_right", "Nose", "Center", "Lat_left", "Lat_right", "Tail_base", "Tail_end"]
    name, mapping = resolve_mapping("auto", crim)
    assert name == "crim13" and mapping["neck"] == ["Ear_left", "Ear_right"]
    pose = np.zeros((1, 1, 2, 8, 2), np.float32)
    pose[0, 0, :, 0] = [0, 2]  # ears
    pose[0, 0, :, 1] = [0, -2]
    pose[0, 0, :, 2] = [2, 0]  # nose
    pose[0, 0, :, 6] = [-3, 0]  # tail base
    pose[0, 0, 1] += [10, 0]
    f = get_domain("mouse").compute(_traj(pose, keypoints=crim), ["resident_head_body_angle", "nose_tail_distance"])
    assert f[0, 0, 0].item() == pytest.approx(0.0)  # neck = midpoint of the ears (0, 0), all in line
    assert f[0, 0, 1].item() == pytest.approx(5.0)  # (2, 0) to (7, 0)
    with pytest.raises(KeyError, match="unknown canonical name"):
        resolve_mapping({"snout": "nose"}, CALMS)


def test_openfield_wall_and_centre_distance():
    kps = ["tl", "tr", "bl", "br", "nose", "neck", "tailbase"]
    pose = np.zeros((1, 2, 1, 7, 2), np.float32)
    pose[0, :, 0, :4] = [[0, 0], [10, 0], [0, 10], [10, 10]]
    pose[0, :, 0, 4:] = [[3, 5], [2, 5], [1, 5]]  # centroid (2, 5), nose-neck 1, body length 2
    traj = _traj(pose, keypoints=kps, individuals=["mouse"])
    d = get_domain("openfield")
    f = d.compute(traj, ["wall_distance", "centre_distance", "nose_neck_distance", "body_length", "head_body_angle"])
    np.testing.assert_allclose(f[0, 0].numpy(), [2.0, 3.0, 1.0, 2.0, 0.0], atol=1e-5)
    boxed = get_domain("openfield", arena=(0, 0, 20, 10)).compute(traj, ["wall_distance", "centre_distance"])
    np.testing.assert_allclose(boxed[0, 0].numpy(), [2.0, 8.0], atol=1e-5)
    with pytest.raises(ValueError, match="arena must be"):
        get_domain("openfield", arena=(0, 0, -1, 1))


def test_cached_points_follow_in_place_changes():
    poses = np.zeros((1, 3, 2, 7, 2), np.float32)
    for f in range(3):
        poses[0, f, 0] = _mouse(f, 0)
        poses[0, f, 1] = _mouse(50, 0)
    d = get_domain("mouse")
    traj = _traj(poses)
    ctx = d.prepare(traj)
    s = torch.from_numpy(traj.states.copy())
    before = d.features["resident_speed"].fn(s, ctx).clone()
    s.mul_(2.0)  # in place: the cached centroid must not be reused
    after = d.features["resident_speed"].fn(s, ctx)
    torch.testing.assert_close(after, 2 * before)


def test_real_pose_files_give_finite_features(shared_data):
    crim = load_recording(shared_data / "crim13/Tvideo_8_trim.csv", fps=25).to_trajectories(21, stride=10)
    f = get_domain("mouse").compute(crim)
    assert f.shape == (9, 21, len(get_domain("mouse").features)) and torch.isfinite(f).all()
    of = load_recording(shared_data / "openfield/8_01_A_190507134142_DLC.csv").to_trajectories(25, stride=50, min_confidence=0.5)
    g = get_domain("openfield").compute(of)
    assert torch.isfinite(g).all()
    wall = g[:, :, get_domain("openfield").feature_names.index("wall_distance")]
    assert (wall > -50).all() and (wall < 400).all()  # inside a ~650 px arena
