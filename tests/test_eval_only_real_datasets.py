"""``train_net.py --eval-only`` on every registered real benchmark, pointed at fixture copies."""
import cv2
import numpy as np
import pytest

from dspf_parser.data.mhp_v2_layout import write_mhp_v2_sample
from test_real_datasets import _densepose_json, _mhp_sample, write_pascal_split
from test_train_net import train_net


def _write_mhp(root):
    for split in ("train", "val"):
        write_mhp_v2_sample(str(root / "LV-MHP-v2"), split, "img_a", _mhp_sample())
        (root / "LV-MHP-v2" / "list").mkdir(exist_ok=True)
        (root / "LV-MHP-v2" / "list" / f"{split}.txt").write_text("img_a\n")


def _write_densepose(root):
    _densepose_json(root / "coco" / "annotations" / "densepose_coco_2014_minival.json")
    (root / "coco" / "val2014").mkdir()
    for n in (7, 9):
        cv2.imwrite(str(root / "coco" / "val2014" / f"COCO_val2014_{n:012d}.jpg"), np.zeros((30, 40, 3), np.uint8))


def _write_pascal(root):
    write_pascal_split(str(root / "pascal-person-part" / "Testing"))


BENCHMARKS = {
    "mhp_v2": ("mhp_v2_val", _write_mhp),
    "densepose_coco": ("densepose_coco_parsing_val", _write_densepose),
    "pascal_person_part": ("pascal_person_part_test", _write_pascal),
}


@pytest.mark.parametrize("benchmark", sorted(BENCHMARKS))
def test_eval_only_prints_a_results_table(benchmark, tmp_path, monkeypatch, capfd):
    dataset, write = BENCHMARKS[benchmark]
    root = tmp_path / "datasets"
    root.mkdir()
    write(root)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    args = train_net.default_argument_parser().parse_args([
        "--config-file", f"configs/{benchmark}/dspf_R50_FPN.yaml", "--eval-only",
        "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path / "out"),
        "DATASETS.TEST", f"('{dataset}',)", "INPUT.MIN_SIZE_TEST", "0", "DATALOADER.NUM_WORKERS", "0",
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.DSPF.PART_HEAD.CONVS_DIM", "32",
        "MODEL.DSPF.FIELD_HEAD.CONVS_DIM", "32", "MODEL.DSPF.POSE_HEAD.CONVS_DIM", "32",
    ])
    results = train_net.main(args)
    assert {"mIoU", "pixel_accuracy", "dspf_epe"} <= set(results["part_parsing"])
    assert {"AP_p_50", "AP_p_vol", "PCP_50", "pose_AP"} <= set(results["instance_parsing"])
    assert 0.0 <= results["part_parsing"]["mIoU"] <= 100.0
    printed = capfd.readouterr()
    table = "\n".join(line for line in (printed.out + printed.err).splitlines() if "copypaste" in line)
    assert "mIoU" in table and "AP_p_50" in table
