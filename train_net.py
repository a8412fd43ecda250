#!/usr/bin/env python
"""Train and evaluate dspf-parser with detectron2's trainer and launcher.

    python train_net.py --config-file configs/synthetic/dspf_R18_tiny.yaml
    python train_net.py --config-file CFG --num-gpus 8                      # one machine
    python train_net.py --config-file CFG --num-gpus 8 --num-machines 2 \
        --machine-rank 0 --dist-url tcp://HOST:PORT                         # several machines
    python train_net.py --config-file CFG --resume                          # continue a run
    python train_net.py --config-file CFG --eval-only MODEL.WEIGHTS model_final.pth
    python train_net.py --config-file CFG --eval-only MODEL.WEIGHTS model_final.pth TEST.AUG.ENABLED True

Trailing ``KEY VALUE`` pairs override the config.
"""
import logging

import detectron2.utils.comm as comm
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, hooks, launch
from detectron2.evaluation import verify_results

from dspf_parser import add_dspf_config
from dspf_parser.engine import DSPFTrainer
from dspf_parser.engine.distributed import close_process_group


class Trainer(DSPFTrainer):
    """Customise training here (hooks, optimizer, ...); see DSPFTrainer for what it sets up."""


def setup(args):
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        res = Trainer.test(cfg, model)
        if cfg.TEST.AUG.ENABLED:
            res.update(Trainer.test_with_TTA(cfg, model))
        if comm.is_main_process():
            verify_results(cfg, res)
        return res
    trainer = Trainer(cfg)
    if cfg.TEST.AUG.ENABLED:
        trainer.register_hooks([hooks.EvalHook(0, lambda: trainer.test_with_TTA(cfg, trainer.model))])
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def launched_main(args):
    """What each process of ``launch`` runs: ``main``, then the process group is closed."""
    res = main(args)
    close_process_group()
    return res


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    logging.getLogger(__name__).info("Command line arguments: %s", args)
    launch(launched_main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
