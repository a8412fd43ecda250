"""Export (issue 13): the exported backbone + heads give the eager model's maps and people.

Reference: the eager ``DSPFParser`` itself (``predict_maps``, and ``forward`` for the people),
on a tiny random-weight model (``tests/test_model.py``'s ``tiny_cfg``) whose weights are
perturbed so that the maps are far from their initial constants and decoding finds people.
Exported models are always loaded back from their saved file and run at sizes and batch sizes
other than the trace's. Tolerances: TorchScript ``atol 1e-5`` on every map (it runs the same
kernels; measured 0); ONNX Runtime ``atol 1e-5`` on the probabilities and ``1e-3`` input
pixels on the DSPF and offsets (its kernels sum in another order; measured <= 4e-6 and
<= 1e-4 px).
"""
import importlib.util
import os
import warnings

import pytest
import torch
from detectron2.modeling import build_model
from test_model import tiny_cfg

from dspf_parser.modeling.export import DSPFMapsExporter, check_export_size, parsing_maps_from_outputs
from dspf_parser.modeling.meta_arch import MAP_NAMES, crop_maps, people_to_instances
from dspf_parser.ops.decoding import decode_maps
from tool_modules import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_OPTS = [
    "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.DSPF.PART_HEAD.CONVS_DIM", "32",
    "MODEL.DSPF.FIELD_HEAD.CONVS_DIM", "32", "MODEL.DSPF.POSE_HEAD.CONVS_DIM", "32",
]
PIXEL_MAPS = ("dspf", "offsets")  # in input pixels; the others are probabilities


@pytest.fixture(scope="module")
def model():
    """A tiny eval-mode DSPFParser with random weights moved off their initial values: the
    1x1 predictors drawn with std 0.2 (not 0.001) and keypoint bias -2 (not -4), so that the
    maps vary and a few joints pass the keypoint threshold (9 people on the 90x120 image)."""
    torch.manual_seed(0)
    m = build_model(tiny_cfg()).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for layer in (m.pose_head.heatmap, m.pose_head.limb, m.pose_head.offset, m.part_head.predictor):
            layer.weight.normal_(0, 0.2)
            layer.bias.zero_()
        m.pose_head.heatmap.bias.fill_(-2.0)
    return m


def images(n, height, width, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, height, width), generator=g).float()


@pytest.fixture(scope="module")
def torchscript_file(model, tmp_path_factory):
    """The exporter traced at 64x64, batch 1, saved to a file."""
    path = str(tmp_path_factory.mktemp("export") / "dspf.ts")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(DSPFMapsExporter(model).eval(), (images(1, 64, 64, seed=1),)).save(path)
    return path


def load_torchscript(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(path)


def assert_maps_close(got, expected, atol, pixel_atol):
    for name in MAP_NAMES:
        a, b = getattr(got, name), getattr(expected, name)
        assert a.shape == b.shape, name
        tol = pixel_atol if name in PIXEL_MAPS else atol
        assert torch.allclose(a, b, rtol=0, atol=tol), (name, (a - b).abs().max().item())


def test_eager_exporter_returns_the_documented_shapes(model):
    out = DSPFMapsExporter(model).eval()(images(2, 64, 96, seed=2))
    h, w, k = 16, 24, model.pose_head.num_keypoints
    shapes = [tuple(o.shape) for o in out]
    assert shapes == [(2, 59, h, w), (2, 2, h, w), (2, k, h, w), (2, k, 2, h, w), (2, len(model.limbs), h, w)]
    assert torch.allclose(out[0].sum(1), torch.ones(2, h, w), atol=1e-5)  # softmax over the classes


def test_torchscript_maps_equal_the_eager_model_at_other_sizes(model, torchscript_file):
    traced = load_torchscript(torchscript_file)
    for n, height, width in ((2, 96, 128), (1, 160, 64)):
        batch = images(n, height, width, seed=height)
        with torch.no_grad():
            out = traced(batch)
            expected, sizes = model.predict_maps([{"image": im} for im in batch])
        assert sizes == [(height, width)] * n
        for i in range(n):
            got = parsing_maps_from_outputs(out, (height, width), model.output_stride, index=i)
            assert_maps_close(got, expected[i], atol=1e-5, pixel_atol=1e-5)


def test_decoding_the_exported_maps_gives_the_eager_people(model, torchscript_file):
    """An image of a size that is not a multiple of 32, padded with the pixel mean as the
    exporter's docstring says: decoding its exported maps gives the eager model's people."""
    height, width = 90, 120
    image = images(1, height, width, seed=3)[0]
    padded = model.pixel_mean.view(1, 3, 1, 1).expand(1, 3, 96, 128).clone()
    padded[0, :, :height, :width] = image
    with torch.no_grad():
        out = load_torchscript(torchscript_file)(padded)
        eager = model([{"image": image}])[0]["instances"]
        eager_maps, sizes = model.predict_maps([{"image": image}])
    maps = parsing_maps_from_outputs(out, (height, width), model.output_stride)
    assert_maps_close(maps, eager_maps[0], atol=1e-5, pixel_atol=1e-5)
    people = decode_maps(maps, (height, width), (height, width), model.decoding)
    eager_people = decode_maps(eager_maps[0], sizes[0], (height, width), model.decoding)
    assert len(eager) >= 2, "the perturbed random model should decode people"
    assert torch.equal(people.instance_map, eager_people.instance_map)
    got = people_to_instances(people)
    assert len(got) == len(eager)
    assert torch.allclose(got.pred_keypoints, eager.pred_keypoints, rtol=0, atol=1e-4)
    assert torch.allclose(got.scores, eager.scores, rtol=0, atol=1e-5)
    assert torch.equal(got.pred_masks, eager.pred_masks)
    assert torch.equal(got.pred_parts, eager.pred_parts)


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
                    reason="onnx / onnxruntime not installed (optional extra: pip install -e .[export])")
def test_onnx_maps_equal_the_eager_model_at_other_sizes(model, tmp_path):
    import onnxruntime

    tool = load_tool("export_model.py")
    path = str(tmp_path / "dspf.onnx")
    tool.export_onnx(DSPFMapsExporter(model).eval(), images(1, 64, 64, seed=1), path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    batch = images(2, 96, 128, seed=4)
    out = session.run(None, {"images": batch.numpy()})
    assert [o.shape[0] for o in out] == [2] * len(MAP_NAMES)
    with torch.no_grad():
        expected, _ = model.predict_maps([{"image": im} for im in batch])
    for i in range(2):
        got = parsing_maps_from_outputs(out, (96, 128), model.output_stride, index=i)
        assert_maps_close(got, expected[i], atol=1e-5, pixel_atol=1e-3)


def test_tool_exports_checkpoint_weights_and_checks_the_file(model, tmp_path):
    """tools/export_model.py with --weights: the saved TorchScript holds those weights."""
    weights = str(tmp_path / "model.pth")
    torch.save({"model": model.state_dict()}, weights)
    output = str(tmp_path / "out" / "dspf.ts")
    result = load_tool("export_model.py").main([
        "--config-file", os.path.join(ROOT, "configs/synthetic/dspf_R18_tiny.yaml"), "--weights", weights,
        "--format", "torchscript", "--output", output, "--height", "64", "--width", "96", "--opts", *TINY_OPTS,
    ])
    assert set(result["max_abs_diff"]) == {"64x96", "96x128"}
    assert all(d <= 1e-5 for diffs in result["max_abs_diff"].values() for d in diffs.values())
    batch = images(1, 64, 96, seed=5)
    with torch.no_grad():
        out = load_torchscript(output)(batch)
        expected, _ = model.predict_maps([{"image": batch[0]}])
    assert_maps_close(parsing_maps_from_outputs(out, (64, 96), 4), expected[0], atol=1e-5, pixel_atol=1e-5)


def test_tool_rejects_a_size_that_is_not_a_multiple_of_32(tmp_path):
    with pytest.raises(SystemExit, match="multiples of the backbone's size_divisibility 32, got 50x64"):
        load_tool("export_model.py").main([
            "--config-file", os.path.join(ROOT, "configs/synthetic/dspf_R18_tiny.yaml"), "--format", "torchscript",
            "--output", str(tmp_path / "x.ts"), "--height", "50", "--width", "64", "--opts", *TINY_OPTS,
        ])


def test_size_and_map_count_errors(model):
    with pytest.raises(ValueError, match="got 64x50"):
        check_export_size(64, 50, 32)
    with pytest.raises(ValueError, match="single backbone cell"):
        check_export_size(32, 32, 32)
    check_export_size(32, 64, 32)
    with pytest.raises(ValueError, match=r"images must be \[N, 3, H, W\]"):
        DSPFMapsExporter(model)(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match="expected the 5 maps"):
        crop_maps([torch.zeros(1, 2, 4, 4)], 0, (16, 16), 4)
