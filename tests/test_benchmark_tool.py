"""tools/benchmark.py runs end to end on a tiny setting and writes complete JSON lines.

No timing is asserted: only that every field is there, FLOPs / parameters are positive, times
are non-negative and the perfect maps decode into exactly the requested number of people.
"""
import json
import math
import os

import pytest
from tool_modules import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_OPTS = [
    "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.DSPF.PART_HEAD.CONVS_DIM", "32",
    "MODEL.DSPF.FIELD_HEAD.CONVS_DIM", "32", "MODEL.DSPF.POSE_HEAD.CONVS_DIM", "32",
]
TIME_KEYS = [
    f"{stage}_ms" for stage in (
        "backbone_and_heads", "keypoint_detection", "limb_scoring", "matching", "grouping",
        "pixel_assignment", "scipy_loop", "total_decoding", "dense_outputs", "total",
    )
]
INFO_KEYS = [
    "config", "config_name", "opts", "input_size", "device", "device_name", "people",
    "decoded_people", "source", "repeats", "threads", "torch_version", "detectron2_version", "gflops",
    "gflops_by_module", "flops_uncounted_ops", "params", "params_model",
]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """The JSON lines of one tiny CPU run (64x64, 1 and 2 people, one repeat)."""
    output = tmp_path_factory.mktemp("benchmark") / "bench.jsonl"
    tool = load_tool("benchmark.py")
    returned = tool.main([
        "--config-file", os.path.join(ROOT, "configs/synthetic/dspf_R18_tiny.yaml"),
        "--input-size", "64", "64", "--people", "1", "2", "--repeats", "1", "--device", "cpu",
        "--output", str(output), "--opts", *TINY_OPTS,
    ])
    lines = [json.loads(line) for line in output.read_text().splitlines() if line.strip()]
    assert lines == json.loads(json.dumps(returned))  # main returns what it writes
    return lines


def test_one_line_per_device_and_people(records):
    assert [(r["device"], r["people"]) for r in records] == [("cpu", 1), ("cpu", 2)]


def test_every_field_is_present_and_sane(records):
    for r in records:
        missing = [k for k in INFO_KEYS + TIME_KEYS if k not in r]
        assert not missing, missing
        assert r["config_name"] == "dspf_R18_tiny" and r["opts"] == TINY_OPTS
        assert r["input_size"] == [64, 64] and r["repeats"] == 1
        assert r["gflops"] > 0 and r["params"] > 0 and r["params_model"] >= r["params"]
        assert set(r["gflops_by_module"]) == {"backbone", "part_head", "field_head", "pose_head"}
        assert all(v > 0 for v in r["gflops_by_module"].values())
        assert math.isclose(sum(r["gflops_by_module"].values()), r["gflops"], rel_tol=1e-6)
        for key in TIME_KEYS:
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] >= 0, key


def test_network_cost_is_the_same_for_every_people_count(records):
    assert len({(r["gflops"], r["params"]) for r in records}) == 1


def test_perfect_maps_decode_the_requested_people(records):
    assert [r["decoded_people"] for r in records] == [r["people"] for r in records]
    assert {r["source"] for r in records} == {"perfect_maps"}


def test_scenes_fit_sixty_people_at_512():
    scene = load_tool("benchmark.py").make_scene(60, (512, 512), seed=0)  # raises if anyone is not rendered
    assert scene.num_people == 60 and scene.keypoints.shape[0] == 60


def test_real_model_path_on_a_checkpoint_and_an_image(tmp_path):
    """``--weights`` + ``--images``: the network's real outputs are decoded (one extra line)."""
    import numpy as np
    import torch
    from PIL import Image

    tool = load_tool("benchmark.py")
    config = os.path.join(ROOT, "configs/synthetic/dspf_R18_tiny.yaml")
    model = tool.build_eval_model(tool.setup_cfg(config, TINY_OPTS))
    weights = tmp_path / "model.pth"
    torch.save({"model": model.state_dict()}, weights)
    image = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(image)
    records = tool.main([
        "--config-file", config, "--input-size", "64", "64", "--people", "1", "--repeats", "1",
        "--warmup", "0", "--device", "cpu", "--weights", str(weights), "--images", str(image),
        "--opts", *TINY_OPTS,
    ])
    assert [(r["source"], r["people"]) for r in records] == [("perfect_maps", 1), ("model", None)]
    assert records[1]["image"] == str(image) and records[1]["decoded_people"] >= 0
    for key in TIME_KEYS:
        assert math.isfinite(records[1][key]) and records[1][key] >= 0, key
    with pytest.raises(SystemExit):
        tool.main(["--config-file", config, "--images", str(image)])  # no --weights


def test_table_lists_every_run(records):
    table = load_tool("benchmark.py").format_table(records).splitlines()
    assert len(table) == 1 + len(records)
    assert "total_decoding" in table[0] and "network" in table[0]
