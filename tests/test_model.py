"""DSPFParser: gradients reach every head, each DSPF ablation mode trains, heads are swappable."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from dspf_parser import add_dspf_config
from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.modeling import FIELD_MODES, PART_HEAD_REGISTRY, PartSegmentationHead


def tiny_cfg(**overrides):
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file("configs/synthetic/dspf_R18_tiny.yaml")
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    for head in (cfg.MODEL.DSPF.PART_HEAD, cfg.MODEL.DSPF.FIELD_HEAD, cfg.MODEL.DSPF.POSE_HEAD):
        head.CONVS_DIM = 32
    for k, v in overrides.items():
        cfg.merge_from_list([k, v])
    return cfg


def fake_batch(n=2, size=64, stride=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = w = size // stride
    k, l = S.num_keypoints, S.num_limbs
    return [{
        "image": torch.randint(0, 255, (3, size, size), generator=g, dtype=torch.uint8),
        "part_seg": torch.randint(0, S.num_parts, (size, size), generator=g),
        "dspf": torch.randn(2, h, w, generator=g) * 8,
        "dspf_weight": (torch.rand(h, w, generator=g) > 0.5).float(),
        "keypoint_heatmaps": (torch.rand(k, h, w, generator=g) > 0.9).float(),
        "keypoint_offsets": torch.randn(k, 2, h, w, generator=g) * 4,
        "keypoint_offset_weights": (torch.rand(k, h, w, generator=g) > 0.9).float(),
        "limb_heatmaps": torch.rand(l, h, w, generator=g),
    } for _ in range(n)]


@pytest.mark.parametrize("balancing", ["uncertainty", "fixed"])
def test_gradients_reach_every_head_and_parameter(balancing):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(**{"MODEL.DSPF.LOSS_BALANCING": balancing}))
    model.train()
    with EventStorage() as storage:
        losses = model(fake_batch())
    assert "balancer_input_loss_dspf" in storage.latest()
    expected = {"loss_part", "loss_dspf", "loss_keypoint_heatmap", "loss_keypoint_offset", "loss_limb_heatmap"}
    assert expected <= set(losses)
    assert (balancing == "uncertainty") == any(k.endswith("_uncertainty") for k in losses)
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert missing == []


@pytest.mark.parametrize("mode", FIELD_MODES)
def test_each_field_ablation_mode_builds_and_trains(mode):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(**{"MODEL.DSPF.FIELD_HEAD.MODE": mode}))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = {n: p.detach().clone() for n, p in model.field_head.named_parameters()}
    batch = fake_batch()
    with EventStorage():
        first = sum(model(batch).values()).item()
        for _ in range(5):
            losses = model(batch)
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()
        assert all(torch.isfinite(v) for v in losses.values())
        assert sum(model(batch).values()).item() < first
    changed = [n for n, p in model.field_head.named_parameters() if not torch.equal(p, before[n])]
    assert changed, "the field head did not train"
    if mode == "residual_warp":
        assert any(n.startswith("flow.") for n in changed)


def test_unknown_field_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="MODE must be one of"):
        build_model(tiny_cfg(**{"MODEL.DSPF.FIELD_HEAD.MODE": "bogus"}))


def test_inference_outputs_at_requested_size():
    model = build_model(tiny_cfg())
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8), "height": 100, "width": 140}])
    assert out[0]["sem_seg"].shape == (S.num_parts, 100, 140)
    assert torch.allclose(out[0]["sem_seg"].sum(0), torch.ones(100, 140), atol=1e-5)
    assert out[0]["dspf"].shape == (2, 100, 140)


def test_heads_are_swappable_through_the_registry():
    name = "CustomPartHeadForTest"
    if name not in PART_HEAD_REGISTRY:
        PART_HEAD_REGISTRY.register(type(name, (PartSegmentationHead,), {}))
    model = build_model(tiny_cfg(**{"MODEL.DSPF.PART_HEAD.NAME": name}))
    assert type(model.part_head).__name__ == name


def test_stage_two_matching_loss_reaches_the_limb_heatmaps():
    from detectron2.structures import Instances, Keypoints

    torch.manual_seed(0)
    model = build_model(tiny_cfg(**{"MODEL.DSPF.MATCHING.LOSS_ON": "True"}))
    model.train()
    batch = fake_batch()
    for x in batch:
        kp = torch.rand(3, S.num_keypoints, 3) * 60
        kp[..., 2] = 2
        inst = Instances((64, 64))
        inst.gt_keypoints = Keypoints(kp)
        x["instances"] = inst
    with EventStorage():
        losses = model(batch)
    assert "loss_matching" in losses and "loss_matching_uncertainty" in losses
    losses["loss_matching"].backward()
    assert model.pose_head.limb.weight.grad.abs().sum() > 0
    # Stage one has no matching loss.
    model1 = build_model(tiny_cfg())
    model1.train()
    with EventStorage():
        assert "loss_matching" not in model1(fake_batch())


def test_inference_returns_people_as_instances():
    model = build_model(tiny_cfg(**{"MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD": "0.0"}))
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)}])[0]
    inst = out["instances"]
    assert inst.image_size == (64, 64)
    for field in ("pred_keypoints", "scores", "pred_boxes", "pred_classes", "pred_masks", "pred_parts"):
        assert inst.has(field)
    assert inst.pred_keypoints.shape[1:] == (S.num_keypoints, 3)
    assert inst.pred_masks.shape[1:] == (64, 64)


def test_part_and_field_loss_weights_scale_their_losses():
    """``PART_HEAD.LOSS_WEIGHT`` / ``FIELD_HEAD.LOSS_WEIGHT`` multiply exactly their task's loss."""
    losses = {}
    for weights in ((1.0, 1.0), (3.0, 0.5)):
        torch.manual_seed(0)
        model = build_model(tiny_cfg(**{"MODEL.DSPF.LOSS_BALANCING": "fixed",
                                        "MODEL.DSPF.PART_HEAD.LOSS_WEIGHT": str(weights[0]),
                                        "MODEL.DSPF.FIELD_HEAD.LOSS_WEIGHT": str(weights[1])}))
        model.train()
        with EventStorage():
            losses[weights] = {k: v.item() for k, v in model(fake_batch()).items()}
    base, scaled = losses[(1.0, 1.0)], losses[(3.0, 0.5)]
    assert scaled["loss_part"] == pytest.approx(3.0 * base["loss_part"], rel=1e-5)
    assert scaled["loss_dspf"] == pytest.approx(0.5 * base["loss_dspf"], rel=1e-5)
    assert scaled["loss_keypoint_heatmap"] == pytest.approx(base["loss_keypoint_heatmap"], rel=1e-5)


def test_part_loss_over_the_hardest_pixels():
    """``LOSS_TOP_K``: the mean of the hardest share of the labelled pixels' cross-entropy (a
    numpy log-softmax and sort as reference), plain cross-entropy at 1, and a clear error
    outside (0, 1]."""
    import numpy as np

    cfg = tiny_cfg()
    shape = {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8),
             "p4": ShapeSpec(channels=8, stride=16), "p5": ShapeSpec(channels=8, stride=32)}
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 4, 4, generator=g)
    targets = torch.randint(0, 5, (2, 16, 16), generator=g)
    targets[0, :3] = 255
    up = F.interpolate(logits, size=(16, 16), mode="bilinear", align_corners=False).permute(0, 2, 3, 1).numpy()
    t = targets.numpy()
    keep = t != 255
    logp = up - np.log(np.exp(up).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, np.where(keep, t, 0)[..., None], -1)[..., 0][keep]
    for top_k in (1.0, 0.2, 0.5):
        cfg.MODEL.DSPF.PART_HEAD.LOSS_TOP_K = top_k
        head = PartSegmentationHead(cfg, shape)
        got = head.losses(logits, targets)["loss_part"]
        k = int(round(top_k * ce.size))
        assert float(got) == pytest.approx(float(np.sort(ce)[::-1][:k].mean()), rel=1e-5)
    cfg.MODEL.DSPF.PART_HEAD.LOSS_TOP_K = 0.0
    with pytest.raises(ValueError, match="LOSS_TOP_K"):
        PartSegmentationHead(cfg, shape)


def test_part_head_channels():
    """``HEAD_CHANNELS``: one 5x5 depthwise-separable convolution (depthwise 5x5 of the decoder's
    channels, pointwise to ``HEAD_CHANNELS``, a norm after each) before the predictor, whose
    input width it sets; 0 keeps the predictor on the decoder; a negative width is refused."""
    cfg = tiny_cfg()
    cfg.MODEL.DSPF.NORM = "GN"
    cfg.MODEL.DSPF.PART_HEAD.CONVS_DIM = 32
    cfg.MODEL.DSPF.PART_HEAD.ASPP_DILATIONS = []
    shape = {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8)}
    cfg.MODEL.DSPF.PART_HEAD.IN_FEATURES = ["p2", "p3"]
    features = {"p2": torch.randn(2, 8, 8, 8), "p3": torch.randn(2, 8, 4, 4)}
    cfg.MODEL.DSPF.PART_HEAD.HEAD_CHANNELS = 0
    plain = PartSegmentationHead(cfg, shape)
    cfg.MODEL.DSPF.PART_HEAD.HEAD_CHANNELS = 64
    head = PartSegmentationHead(cfg, shape)
    classes = plain.predictor.out_channels
    assert head(features).shape == plain(features).shape == (2, classes, 8, 8)
    extra = sum(p.numel() for p in head.parameters()) - sum(p.numel() for p in plain.parameters())
    # depthwise 32 x 25 + its GN (2 x 32) + pointwise 32 x 64 + its GN (2 x 64) + predictor (64 - 32) x classes
    assert extra == 32 * 25 + 64 + 32 * 64 + 128 + 32 * classes
    cfg.MODEL.DSPF.PART_HEAD.HEAD_CHANNELS = -1
    with pytest.raises(ValueError, match="HEAD_CHANNELS"):
        PartSegmentationHead(cfg, shape)


def test_dspf_duplicate_radius_counts_in_keypoint_radii(monkeypatch):
    """``MODEL.DSPF.INFERENCE.DSPF_DUPLICATE_RADIUS`` reaches the DSPF merge as that many
    ``POSE_HEAD.KEYPOINT_RADIUS`` (input px)."""
    from dspf_parser.ops import decoding

    cfg = tiny_cfg(**{"MODEL.DSPF.INFERENCE.DSPF_DUPLICATE_RADIUS": "2.5",
                      "MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD": "0.0"})
    seen = []
    real = decoding.merge_people_by_dspf

    def spy(*args, duplicate_radius, **kwargs):
        seen.append(duplicate_radius)
        return real(*args, duplicate_radius=duplicate_radius, **kwargs)

    monkeypatch.setattr(decoding, "merge_people_by_dspf", spy)
    model = build_model(cfg)
    model.eval()
    with torch.no_grad():
        model([{"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)}])
    assert seen == [2.5 * cfg.MODEL.DSPF.POSE_HEAD.KEYPOINT_RADIUS]
