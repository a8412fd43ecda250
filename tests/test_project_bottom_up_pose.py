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
