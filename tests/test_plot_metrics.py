"""tools/plot_metrics.py reads a detectron2 metrics.json and draws the curves."""
import json
import os
import sys

import cv2
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import plot_metrics  # noqa: E402


def test_curves_and_png(tmp_path, capsys):
    rows = [{"iteration": i, "total_loss": 10.0 / (i + 1), "loss_part": 5.0 / (i + 1),
             "loss_part_uncertainty": 0.1, "lr": 0.01} for i in range(0, 100, 5)]
    rows.insert(10, {"iteration": 49, "part_parsing/mIoU": 20.0, "instance_parsing/AP_p_50": 5.0})
    rows.append({"iteration": 99, "part_parsing/mIoU": 40.0, "instance_parsing/AP_p_50": 12.5})
    rows.append({"iteration": 95, "total_loss": 0.5})  # a resumed run rewrites iteration 95
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n{\"iteration\": 10")
    losses, metrics = plot_metrics.curves(plot_metrics.read_metrics(str(tmp_path / "metrics.json")))
    assert set(losses) == {"total_loss", "loss_part"}  # no lr, no uncertainty terms
    assert dict(losses["total_loss"])[95] == 0.5 and len(losses["total_loss"]) == 20
    assert metrics["part_parsing/mIoU"] == [(49, 20.0), (99, 40.0)]
    out = plot_metrics.main([str(tmp_path)])
    image = cv2.imread(out)
    assert image is not None and image.shape[0] > 300 and image.std() > 5
    assert "part_parsing/mIoU=40.0" in capsys.readouterr().out


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        plot_metrics.main([str(tmp_path)])
    (tmp_path / "metrics.json").write_text('{"iteration": 1}\nnot json\n{"iteration": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.json:2"):
        plot_metrics.read_metrics(str(tmp_path / "metrics.json"))


def test_balancer_inputs_are_preferred(tmp_path):
    rows = [{"iteration": i, "total_loss": -1.0, "loss_part": 0.1, "balancer_input_loss_part": 2.0 - i / 100}
            for i in range(0, 50, 10)]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows))
    losses, _ = plot_metrics.curves(plot_metrics.read_metrics(str(tmp_path / "metrics.json")))
    assert list(losses) == ["balancer_input_loss_part"]
