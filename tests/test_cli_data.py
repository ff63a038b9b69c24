
from nsprog.cli import main
from nsprog.data import load_dataset


def test_data_synthetic_command(tmp_path, capsys):
    out = tmp_path / "s.h5"
    assert main(["data", "synthetic", "--out", str(out), "--n-train", "400", "--n-val", "50", "--n-test", "50"]) == 0
    d = load_dataset(out)
    assert len(d["train"]) == 400
    assert main(["data", "synthetic", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["data", "info", str(out)]) == 0
    assert "train: Trajectories(N=400" in capsys.readouterr().out
