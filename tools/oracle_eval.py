#!/usr/bin/env python
"""Oracle evaluation: decode the maps a perfect network would output, and score the people.

Example::

    python tools/oracle_eval.py --config-file configs/synthetic/dspf_R18_tiny.yaml \
        --dataset synthetic_humans_val synthetic_humans_crowd_val \
        --association matching greedy_openpose greedy_personlab --degrade 0 1 2

For every image of each registered dataset, the project's mapper builds the targets without
augmentation (the keypoint disks and offsets, limb heatmaps, DSPF and the input-resolution part
map); :func:`dspf_parser.evaluation.oracle.oracle_maps` turns them into network maps, optionally
damaged by ``--degrade LEVEL`` (:data:`dspf_parser.evaluation.oracle.DEGRADE_LEVELS`, seeded by
``--seed``); they are decoded by :func:`dspf_parser.ops.decoding.decode_maps` with the model's
own settings (``MODEL.DSPF.INFERENCE``), exactly as ``DSPFParser`` does, and scored by
``InstanceParsingEvaluator``. Besides the metrics, it counts decoded persons per ground-truth
person and the per-limb association errors (:func:`association_errors`).

Prints a table, then one line per (dataset, degrade level, association)::

    oracle <dataset> <association> AP_p_50=<x> AP_p_vol=<x> PCP_50=<x> AP_r_vol=<x> pose_AP=<x>

(percent, one decimal; ``[degrade=L]`` is appended for L > 0), and writes them as JSON lines to
``--output`` if given.
"""
import argparse
import json
import os
import sys
from typing import Dict, List

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dspf_parser  # noqa: E402,F401  (registers the datasets)
from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402

from dspf_parser import add_dspf_config  # noqa: E402
from dspf_parser.data import DSPFDatasetMapper  # noqa: E402
from dspf_parser.data.categories import get_schema  # noqa: E402
from dspf_parser.evaluation import InstanceParsingEvaluator  # noqa: E402
from dspf_parser.evaluation.oracle import DEGRADE_LEVELS, association_errors, degrade_maps, oracle_maps  # noqa: E402
from dspf_parser.modeling.meta_arch import decoding_settings_from_cfg, people_to_instances  # noqa: E402
from dspf_parser.ops.decoding import ASSOCIATIONS, decode_maps  # noqa: E402

METRICS = ("AP_p_50", "AP_p_vol", "PCP_50", "AP_r_vol", "pose_AP")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", required=True)
    p.add_argument("--dataset", nargs="+", help="registered datasets (default: DATASETS.TEST)")
    p.add_argument("--association", nargs="+", choices=ASSOCIATIONS,
                   help="default: MODEL.DSPF.INFERENCE.ASSOCIATION")
    p.add_argument("--degrade", nargs="+", type=int, default=[0], choices=sorted(DEGRADE_LEVELS),
                   help="damage levels of the exact maps (0 = exact)")
    p.add_argument("--seed", type=int, default=0, help="seed of the damage")
    p.add_argument("--limit", type=int, default=0, help="only the first N images of each dataset")
    p.add_argument("--output", help="write the results as JSON lines here")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ...")
    return p.parse_args(argv)


def setup_cfg(args: argparse.Namespace):
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    return cfg


def evaluate(cfg, dataset: str, associations: List[str], levels: List[int], seed: int, limit: int) -> List[Dict]:
    """Oracle figures of ``dataset`` for every (degrade level, association)."""
    schema = get_schema(MetadataCatalog.get(dataset).schema)
    mapper = DSPFDatasetMapper(cfg, is_train=True, augmentations=[])
    records = DatasetCatalog.get(dataset)
    if limit > 0:
        records = records[:limit]
    runs = [(lv, a) for lv in levels for a in associations]
    evaluators = {r: InstanceParsingEvaluator(dataset, distributed=False) for r in runs}
    counts = {r: dict(decoded=0, gt=0, true_pairs=0, missed=0, cross=0) for r in runs}
    settings = {a: decoding_settings_from_cfg(cfg, association=a) for a in associations}
    stride, radius = cfg.MODEL.DSPF.COMMON_STRIDE, cfg.MODEL.DSPF.POSE_HEAD.KEYPOINT_RADIUS
    with torch.no_grad():
        for index, record in enumerate(tqdm(records, desc=f"oracle {dataset}", unit="img")):
            sample = mapper(record)
            size = tuple(sample["image"].shape[-2:])
            exact = oracle_maps(sample, schema.num_parts, cfg.MODEL.DSPF.PART_HEAD.IGNORE_VALUE)
            gt = sample["instances"].gt_keypoints.tensor
            for level in levels:
                g = torch.Generator().manual_seed(seed * 1_000_003 + index)
                maps = exact if level == 0 else degrade_maps(exact, gt, size, stride, radius, DEGRADE_LEVELS[level], g)
                for a in associations:
                    people = decode_maps(maps, size, (record["height"], record["width"]), settings[a])
                    evaluators[(level, a)].process([record], [{"instances": people_to_instances(people)}])
                    c = counts[(level, a)]
                    c["decoded"] += len(people.scores)
                    c["gt"] += len(record.get("annotations", []))
                    # the matching's associations: a shared joint (complete_people) is another's
                    associated = torch.where(people.shared_joints[..., None], torch.zeros_like(people.poses), people.poses)
                    t, m, x = association_errors(associated, gt, schema.limbs)
                    c["true_pairs"] += t
                    c["missed"] += m
                    c["cross"] += x
    rows = []
    for (level, a), ev in evaluators.items():
        res = dict(ev.evaluate()["instance_parsing"])
        c = counts[(level, a)]
        rows.append(dict(dataset=dataset, association=a, degrade=level, images=len(records), **res,
                         persons_per_gt=c["decoded"] / max(c["gt"], 1), **c))
    return rows


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    cfg = setup_cfg(args)
    datasets = args.dataset or list(cfg.DATASETS.TEST)
    associations = args.association or [cfg.MODEL.DSPF.INFERENCE.ASSOCIATION]
    rows = []
    for name in datasets:
        rows += evaluate(cfg, name, associations, args.degrade, args.seed, args.limit)
    header = f"{'dataset':<28} {'association':<17} {'deg':>3} " + " ".join(f"{m:>9}" for m in METRICS)
    header += f" {'pers/gt':>7} {'pairs':>6} {'missed':>6} {'cross':>5}"
    print(header)
    for r in rows:
        print(f"{r['dataset']:<28} {r['association']:<17} {r['degrade']:>3} "
              + " ".join(f"{r[m]:>9.1f}" for m in METRICS)
              + f" {r['persons_per_gt']:>7.3f} {r['true_pairs']:>6} {r['missed']:>6} {r['cross']:>5}")
    for r in rows:
        suffix = f" [degrade={r['degrade']}]" if r["degrade"] else ""
        print(f"oracle {r['dataset']} {r['association']} " + " ".join(f"{m}={r[m]:.1f}" for m in METRICS) + suffix)
    if args.output:
        with open(args.output, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
    return rows


if __name__ == "__main__":
    main()
