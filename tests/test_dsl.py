import json

import pytest
import torch
import yaml

from nsprog.dsl import (
    DSL,
    ITE,
    Add,
    Affine,
    DSLError,
    Hole,
    Map,
    MapAverage,
    MapPrefixes,
    Multiply,
    ProgramFormatError,
    RunningAverage,
    Sig,
    StackedProgram,
    Type,
    explain,
    expand,
    load_dsl,
    min_depths,
    pretty,
    pretty_binary,
    program_from_json,
    program_to_json,
)
from nsprog.dsl.semantics import ParamError, evaluate_program

DSL_ = load_dsl("synthetic")
LA = Sig(Type("list", 4), Type("atom", 1))
LL = Sig(Type("list", 4), Type("list", 1))
AA = Sig(Type("atom", 4), Type("atom", 1))


def affine(lib, w, b):
    return Affine(AA, library=lib, features=DSL_.library[lib], params={"weight": [[w]], "bias": [b]})


def test_structural_equality_and_hash_ignore_parameters():
    a = MapAverage(LA, fn=affine("FinalX", 1.0, 0.0))
    b = MapAverage(LA, fn=affine("FinalX", -3.0, 2.0))
    c = MapAverage(LA, fn=affine("FinalY", 1.0, 0.0))
    assert a == b and hash(a) == hash(b) and a.key() == "MapAverage(FinalXAffine)"
    assert a != c
    with pytest.raises(Exception):
        a.fn = c.fn  # frozen


def test_mapaverage_affine_matches_hand_computation():
    x = torch.randn(5, 7, 4)
    prog = MapAverage(LA, fn=affine("FinalY", 2.0, -0.5))
    out = evaluate_program(prog, DSL_, x)
    expected = (2.0 * x[..., 1] - 0.5).mean(1, keepdim=True)
    torch.testing.assert_close(out, expected)


def test_list_productions_match_hand_computation():
    x = torch.randn(3, 6, 4)
    f = affine("FinalX", 1.5, 0.25)
    step = 1.5 * x[..., 0:1] + 0.25
    torch.testing.assert_close(evaluate_program(Map(LL, fn=f), DSL_, x), step)
    prefix = MapPrefixes(LL, fn=MapAverage(LA, fn=f))
    cum = torch.stack([step[:, : t + 1].mean(1) for t in range(6)], 1)
    torch.testing.assert_close(evaluate_program(prefix, DSL_, x), cum)
    run = RunningAverage(LL, fn=f, window=3)
    want = torch.stack([step[:, max(0, t - 2) : t + 1].mean(1) for t in range(6)], 1)
    torch.testing.assert_close(evaluate_program(run, DSL_, x), want)


def test_ite_add_multiply_semantics():
    x = torch.randn(4, 4)  # atom->atom program on per-window vectors
    c, t, e = affine("FinalX", 1.0, 0.0), affine("FinalY", 2.0, 1.0), affine("AvgSpeed", -1.0, 0.0)
    beta = 3.0
    ite = ITE(AA, cond=c, then=t, orelse=e, beta=beta)
    gate = torch.sigmoid(beta * x[:, 0:1])
    torch.testing.assert_close(
        evaluate_program(ite, DSL_, x), gate * (2 * x[:, 1:2] + 1) + (1 - gate) * (-x[:, 2:3])
    )
    torch.testing.assert_close(evaluate_program(Add(AA, a=c, b=t), DSL_, x), x[:, 0:1] + 2 * x[:, 1:2] + 1)
    torch.testing.assert_close(evaluate_program(Multiply(AA, a=c, b=t), DSL_, x), x[:, 0:1] * (2 * x[:, 1:2] + 1))


def test_stacked_candidates_equal_individual_programs():
    x = torch.randn(6, 9, 4)
    progs = [MapAverage(LA, fn=expand(lib, AA, DSL_)) for lib in ("FinalX", "FinalY", "AvgSpeed", "AvgAccel")]
    stacked = StackedProgram(progs, DSL_, seed=3)(x)
    for k, p in enumerate(progs):
        torch.testing.assert_close(stacked[k], StackedProgram([p], DSL_, seed=3)(x)[0])
    with pytest.raises(ValueError, match="different shapes cannot be stacked"):
        StackedProgram([progs[0], Hole(LA)], DSL_)


def test_holes_are_neural_modules_of_the_right_kind_and_size():
    from nsprog.dsl.semantics import _SGRUHole, _SMLPHole, hidden_units

    sp = StackedProgram([MapAverage(LA, fn=Hole(AA))], DSL_, max_units=16, min_units=4)
    mlp = [m for m in sp.modules() if isinstance(m, _SMLPHole)][0]
    assert mlp.h == 8  # depth 2: 16 * 0.5
    gru = [m for m in StackedProgram([Hole(LA)], DSL_, max_units=16).modules() if isinstance(m, _SGRUHole)][0]
    assert gru.h == 16
    assert hidden_units(5, 16, 4) == 4
    assert StackedProgram([Hole(LL)], DSL_)(torch.randn(2, 5, 4)).shape == (1, 2, 5, 1)


def test_json_round_trip_keeps_parameters_and_outputs():
    prog = MapAverage(LA, fn=Multiply(AA, a=affine("FinalX", 0.3, 0.1), b=Hole(AA)))
    trained = StackedProgram([prog], DSL_, seed=1).export(0)
    text = json.dumps(program_to_json(trained))
    back = program_from_json(json.loads(text), DSL_, require_params=True)
    assert back == trained
    x = torch.randn(4, 5, 4)
    torch.testing.assert_close(evaluate_program(back, DSL_, x), evaluate_program(trained, DSL_, x))


def test_bad_program_json_names_the_problem():
    good = program_to_json(MapAverage(LA, fn=affine("FinalX", 1.0, 0.0)))
    bad = json.loads(json.dumps(good))
    bad["children"][0]["sig"] = ["atom", 4, "atom", 2]
    del bad["children"][0]["params"]
    with pytest.raises(ProgramFormatError, match=r"program.MapAverage\[0\]: type mismatch: expected atom\(4\) -> atom\(1\)"):
        program_from_json(bad, DSL_)
    missing = json.loads(json.dumps(good))
    del missing["children"][0]["params"]["weight"]
    with pytest.raises(ProgramFormatError, match="missing parameter 'weight'"):
        program_from_json(missing, DSL_, require_params=True)
    unknown = json.loads(json.dumps(good))
    unknown["children"][0]["features"] = ["elbow_angle"]
    with pytest.raises(ProgramFormatError, match=r"feature\(s\) \['elbow_angle'\]"):
        program_from_json(unknown, DSL_)
    with pytest.raises(ProgramFormatError, match="unknown node 'Fold'"):
        program_from_json({"node": "Fold", "sig": ["list", 4, "atom", 1]}, DSL_)
    hole = program_to_json(MapAverage(LA, fn=Hole(AA)))
    with pytest.raises(ProgramFormatError, match="neural hole .* has no stored parameters"):
        program_from_json(hole, DSL_, require_params=True)


def test_wrong_parameter_shape_and_feature_width():
    p = MapAverage(LA, fn=Affine(AA, library="FinalX", features=("final_x",), params={"weight": [[1.0, 2.0]], "bias": [0.0]}))
    with pytest.raises(ParamError, match=r"parameter 'weight' has shape \(1, 2\); expected \(1, 1\)"):
        StackedProgram([p], DSL_)
    wide = Sig(Type("list", 6), Type("atom", 1))
    with pytest.raises(ValueError, match="program input has 6 features but DSL 'synthetic' has 4"):
        StackedProgram([Hole(wide)], DSL_)


def test_user_dsl_from_yaml_and_its_errors(tmp_path):
    spec = {
        "name": "mine",
        "domain": "synthetic",
        "features": ["disp_x", "speed"],
        "library": {"DispX": ["disp_x"], "Both": ["disp_x", "speed"]},
        "productions": {"list->atom": ["MapAverage"], "atom->atom": ["DispX", "Both", "Add"]},
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec))
    dsl = load_dsl(path)
    assert dsl.features == ("disp_x", "speed") and dsl.library["Both"] == ("disp_x", "speed")
    assert min_depths(dsl)["list->atom"] == 2
    bad = dict(spec, features=["disp_x", "elbow"], productions={"list->atom": ["MapAvg"], "atom->atom": ["DispX"]})
    with pytest.raises(DSLError) as info:
        DSL.from_dict(bad)
    msg = str(info.value)
    assert "unknown production 'MapAvg' (did you mean 'MapAverage'?)" in msg
    assert "feature 'elbow' is not provided by domain 'synthetic'" in msg
    with pytest.raises(KeyError, match="unknown DSL .nope.; shipped DSLs: .*synthetic"):
        load_dsl("nope")


def test_printing_in_paper_style_and_raw_unit_explanation():
    prog = MapAverage(LA, fn=affine("FinalX", 2.0, -1.0))
    assert pretty(prog) == "mapaverage(fun xt. FinalXAffine[2.00]; -1.00(xt)) x"
    assert pretty_binary(prog) == "1[> 1.00](mapaverage(fun xt. FinalXAffine[2.00](xt)) x)"
    # standardised feature (f - 10) / 2: 2 (f - 10) / 2 - 1 > 0  <=>  f > 11
    mean, std = [10, 0, 0, 0], [2, 1, 1, 1]
    assert explain(prog, DSL_.features, mean, std) == "mean over the window of final_x > 11.000"
    neg = MapAverage(LA, fn=affine("FinalX", -1.0, 0.0))
    assert explain(neg, DSL_.features, mean, std) == "mean over the window of final_x < 10.000"
    assert "<nn list(4) -> atom(1)>" in pretty(ITE(LA, cond=Hole(LA), then=Hole(LA), orelse=Hole(LA)))


def test_programs_with_ite_get_a_plain_language_rule_in_raw_units():
    from nsprog.dsl import StackedProgram
    from nsprog.dsl.ast import Hole, is_complete
    from nsprog.dsl.printing import rule
    from nsprog.search.graph import ProgramGraph, SearchNode

    dsl = load_dsl("synthetic_displacement")
    start = Sig(Type("list", dsl.n_features), Type("atom", 1))
    graph = ProgramGraph(dsl, start, 3, 0.01)
    frontier, found = [SearchNode(Hole(start), 0.0)], None
    while frontier and found is None:
        for c in graph.children(frontier.pop(0)):
            if is_complete(c.program) and c.program.key().startswith("MapAverage(ITE("):
                found = c.program
                break
            frontier.append(c)
    program = StackedProgram([found], dsl).export(0)
    text = rule(program, dsl.features, [10.0] * dsl.n_features, [2.0] * dsl.n_features)
    assert text.startswith("1 when the mean over the window of (if (") and "otherwise" in text
    w = float(program.fn.children[0].params["weight"][0][0]) if hasattr(program.fn.children[0].params["weight"][0], "__len__") \
        else float(program.fn.children[0].params["weight"][0])
    b = float(program.fn.children[0].params["bias"][0])
    # the condition w (x - 10) / 2 + b > 0 reads as (w/2) x + (b - 5 w) in raw units
    assert f"{w / 2:.3f} * {program.fn.children[0].features[0]}" in text
    assert f"{b - 5 * w:.3f}".lstrip("-") in text


def test_windows_that_do_not_fit_the_dsl_name_the_dsls_that_do():
    from nsprog.data import synthetic_dataset

    windows = synthetic_dataset(n_train=20, n_val=5, n_test=5, seed=0)["train"]
    load_dsl("synthetic").check_windows(windows)  # fits: no error
    with pytest.raises(ValueError, match=r"do not fit feature domain 'team'.*shipped DSLs that fit these windows: .*synthetic"):
        load_dsl("team").check_windows(windows)
