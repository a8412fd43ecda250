"""The example project under projects/ builds from dspf-parser's registries, trains and decodes."""
import os
import sys

import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from dspf_parser import DSPFDatasetMapper, add_dspf_config
from dspf_parser.modeling import LPMatchingLayer, PoseHead

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "projects", "BottomUpPose"))
import bottom_up_pose  # noqa: E402,F401


def test_bottom_up_pose_project_trains_and_decodes():
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file("projects/BottomUpPose/configs/bottom_up_pose_R18_tiny.yaml")
    cfg.merge_from_list(["MODEL.FPN.OUT_CHANNELS", "32", "MODEL.DSPF.POSE_HEAD.CONVS_DIM", "32",
                         "INPUT.DSPF.CROP_SIZE", "(64, 64)"])
    model = build_model(cfg)
    assert type(model).__name__ == "BottomUpPoseNet"
    assert isinstance(model.pose_head, PoseHead) and isinstance(model.matching_layer, LPMatchingLayer)
    mapper = DSPFDatasetMapper(cfg, is_train=True)
    batch = [mapper(d) for d in DatasetCatalog.get("synthetic_humans_train")[:2]]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    with EventStorage():
        first = sum(model(batch).values()).item()
        for _ in range(3):
            loss = sum(model(batch).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert sum(model(batch).values()).item() < first
    model.eval()
    with torch.no_grad():
        out = model([{"image": batch[0]["image"]}])[0]["instances"]
    assert out.pred_keypoints.shape[1:] == (16, 3) and len(out.scores) == len(out)


def test_project_reuses_the_preprocessing_and_the_decoding_seam(monkeypatch):
    """No copy of the normalisation or of the map handling: the project calls dspf-parser's
    ``preprocess_images`` and its people equal ``decode_maps`` on the pose head's own maps
    (sigmoids, cropped to the grid; no part map, zero DSPF), rescaled to the requested size."""
    from bottom_up_pose import meta_arch as project
    from dspf_parser.modeling import meta_arch
    from dspf_parser.ops.decoding import ParsingMaps, decode_maps

    assert project.preprocess_images is meta_arch.preprocess_images
    calls = []
    monkeypatch.setattr(project, "preprocess_images",
                        lambda *a, **k: calls.append(1) or meta_arch.preprocess_images(*a, **k))
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file("projects/BottomUpPose/configs/bottom_up_pose_R18_tiny.yaml")
    cfg.merge_from_list(["MODEL.FPN.OUT_CHANNELS", "32", "MODEL.DSPF.POSE_HEAD.CONVS_DIM", "32",
                         "MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD", "0.0",
                         "MODEL.DSPF.INFERENCE.LIMB_PRUNE_THRESHOLD", "0.0"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    image = torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8)
    with torch.no_grad():
        out = model([{"image": image, "height": 100, "width": 140}])[0]["instances"]
        x = ((image.float() - model.pixel_mean) / model.pixel_std)
        x = torch.nn.functional.pad(x, (0, 96 - 70, 0, 64 - 50))[None]
        pose = model.pose_head(model.backbone(x))
        gh, gw = 13, 18
        heat = pose.heatmap_logits[0, :, :gh, :gw].sigmoid()
        maps = ParsingMaps(heat.new_ones(1, gh, gw), heat.new_zeros(2, gh, gw), heat,
                           pose.offsets[0, :, :, :gh, :gw], pose.limb_logits[0, :, :gh, :gw].sigmoid(), 4)
        want = decode_maps(maps, (50, 70), (100, 140), model.decoding)
    assert calls == [1]
    assert len(want.scores) > 0
    assert out.pred_keypoints.shape == want.poses.shape
    assert torch.allclose(out.pred_keypoints, want.poses, atol=1e-4) and torch.allclose(out.scores, want.scores, atol=1e-6)
