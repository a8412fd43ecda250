#!/usr/bin/env python
"""Train the pose-only example project on dspf-parser's synthetic benchmark.

    python projects/BottomUpPose/train_net.py --config-file projects/BottomUpPose/configs/bottom_up_pose_R18_tiny.yaml
"""
import os
import sys

from detectron2.config import get_cfg
from detectron2.data import build_detection_train_loader
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bottom_up_pose  # noqa: E402,F401  (registers BottomUpPoseNet)
from dspf_parser import DSPFDatasetMapper, add_dspf_config  # noqa: E402


class Trainer(DefaultTrainer):
    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, mapper=DSPFDatasetMapper(cfg, is_train=True))


def setup(args):
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.DATASETS.TEST = ()  # this example trains only; evaluate poses with dspf_parser's evaluator
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    trainer = Trainer(setup(args))
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
