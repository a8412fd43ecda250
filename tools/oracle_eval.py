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

With ``--show DIR`` it also writes, per (dataset, degrade level, association), the cases to look
at: ``DIR/<dataset>/<association>_degrade<L>/lost.txt`` lists, under AP^p_50's matching (mean
part IoU 0.5, decoded people by decreasing score), every annotated person no decoded person
matches (lost) and every decoded person that matches none (extra), and one PNG per such image:
the image with the annotated people, the decoded people drawn by
:func:`~dspf_parser.utils.visualizer.draw_parsing` (skeletons, scores), the decoded part labels.

Prints a table, then one line per (dataset, degrade level, association)::

    oracle <dataset> <association> AP_p_50=<x> AP_p_vol=<x> PCP_50=<x> AP_r_vol=<x> pose_AP=<x>

(percent, one decimal; ``[degrade=L]`` is appended for L > 0), and writes them as JSON lines to
``--output`` if given.
"""
import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dspf_parser  # noqa: E402,F401  (registers the datasets)
from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from detectron2.structures import Instances  # noqa: E402

from dspf_parser import add_dspf_config  # noqa: E402
from dspf_parser.data import DSPFDatasetMapper  # noqa: E402
from dspf_parser.data.annotations import load_person_parts  # noqa: E402
from dspf_parser.data.categories import HumanSchema, get_schema  # noqa: E402
from dspf_parser.evaluation import InstanceParsingEvaluator  # noqa: E402
from dspf_parser.evaluation.instance_metrics import part_iou_matrix  # noqa: E402
from dspf_parser.evaluation.oracle import DEGRADE_LEVELS, association_errors, degrade_maps, oracle_maps  # noqa: E402
from dspf_parser.modeling.meta_arch import decoding_settings_from_cfg, people_to_instances  # noqa: E402
from dspf_parser.ops.decoding import ASSOCIATIONS, decode_maps  # noqa: E402
from dspf_parser.utils.visualizer import colorize_instances, draw_parsing, draw_part_map  # noqa: E402

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
    p.add_argument("--show", metavar="DIR", help="write the lost and extra people (lost.txt) and their images here")
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


def annotated_parts(record: Dict, schema: HumanSchema) -> List[np.ndarray]:
    """The part map ``[H, W]`` of each annotated person of ``record``, as the evaluator reads it."""
    return [load_person_parts(a, record["height"], record["width"], schema.num_parts, image=record["file_name"],
                              out_of_range="keep") for a in record.get("annotations", [])]


def show_folder(show: str, dataset: str, association: str, level: int) -> str:
    """Where ``--show`` writes one run's ``lost.txt`` and pictures."""
    return os.path.join(show, dataset, f"{association}_degrade{level}")


def show_mistakes(directory: str, record: Dict, gt_parts: List[np.ndarray], instances: Instances,
                  schema: HumanSchema) -> Tuple[List[str], List[str]]:
    """The lost and the extra lines for ``lost.txt`` (see the module docstring) of one decoded
    image, and its PNG in ``directory`` when there is one. AP^p_50's matching: by decreasing
    score, each decoded person takes the annotated person (with pixels, as the evaluator counts
    them) of its highest mean part IoU (:func:`part_iou_matrix`) if that reaches 0.5 and no
    higher-scored person took it; the annotated people left are lost, the decoded people left are
    extra. ``gt_parts``: :func:`annotated_parts` of the record; ``instances``: the decoding's
    (:func:`people_to_instances`), at the record's size."""
    height, width = record["height"], record["width"]
    annos = record.get("annotations", [])
    counted = [g for g, parts in enumerate(gt_parts) if (parts > 0).any()]
    pred_parts = list(instances.pred_parts.numpy())
    iou = np.zeros((len(annos), len(pred_parts)))  # 0 for the annotated people without pixels
    if counted and pred_parts:
        iou[counted] = part_iou_matrix([gt_parts[g] for g in counted], pred_parts, schema.num_parts)
    name = os.path.splitext(os.path.basename(record["file_name"]))[0]
    scores, joints = instances.scores.numpy(), (instances.pred_keypoints[..., 2] > 0).sum(dim=1).numpy()
    taken = np.zeros(len(annos), bool)
    extras = []
    for d in np.argsort(-scores, kind="stable"):
        g = int(iou[:, d].argmax()) if len(annos) else -1
        best = float(iou[g, d]) if g >= 0 else 0.0
        if best >= 0.5 and not taken[g]:
            taken[g] = True
            continue
        why = f"a second match of annotated person {g}" if best >= 0.5 else f"best annotated IoU {best:.3f}"
        extras.append(f"{name} extra decoded person {d}: score {scores[d]:.3f}, {int(joints[d])} joints, "
                      f"{int((pred_parts[d] > 0).sum())} px, {why}")
    lines = []
    for g in counted:
        if not taken[g]:
            best = float(iou[g].max()) if len(pred_parts) else 0.0
            visible = int((np.asarray(annos[g]["keypoints"]).reshape(-1, 3)[:, 2] > 0).sum())
            lines.append(f"{name} lost annotated person {g}: {int((gt_parts[g] > 0).sum())} px, "
                         f"{visible} labelled joints, best decoded IoU {best:.3f}")
    if lines or extras:
        image = cv2.imread(record["file_name"], cv2.IMREAD_COLOR)
        if image is None or image.shape[:2] != (height, width):
            raise ValueError(f"{record['file_name']}: cannot be read as a {height}x{width} image")
        annotated = np.zeros((height, width), np.int64)
        for g, parts in enumerate(gt_parts):
            annotated[(parts > 0) & (parts < schema.num_parts)] = g + 1
        labels = np.zeros((height, width), np.int64)
        for parts in pred_parts:
            labels = np.where(parts > 0, parts, labels)
        panel = np.concatenate([
            cv2.addWeighted(image, 0.5, colorize_instances(annotated), 0.5, 0),
            draw_parsing(image, instances, limbs=schema.limbs), draw_part_map(labels)], axis=1)
        scale = max(1, 384 // max(height, 1))  # small synthetic images are enlarged to look at
        panel = cv2.resize(panel, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        os.makedirs(directory, exist_ok=True)
        cv2.imwrite(os.path.join(directory, name + ".png"), panel)
    return lines, extras


def evaluate(cfg, dataset: str, associations: List[str], levels: List[int], seed: int, limit: int,
             show: Optional[str] = None) -> List[Dict]:
    """Oracle figures of ``dataset`` for every (degrade level, association); with ``show``, the
    lost and extra people of each run written under it (:func:`show_mistakes`)."""
    schema = get_schema(MetadataCatalog.get(dataset).schema)
    mapper = DSPFDatasetMapper(cfg, is_train=True, augmentations=[])
    records = DatasetCatalog.get(dataset)
    if limit > 0:
        records = records[:limit]
    runs = [(lv, a) for lv in levels for a in associations]
    evaluators = {r: InstanceParsingEvaluator(dataset, distributed=False) for r in runs}
    counts = {r: dict(decoded=0, gt=0, true_pairs=0, missed=0, cross=0) for r in runs}
    shown = {r: ([], []) for r in runs}  # lost, extra
    settings = {a: decoding_settings_from_cfg(cfg, association=a) for a in associations}
    stride, radius = cfg.MODEL.DSPF.COMMON_STRIDE, cfg.MODEL.DSPF.POSE_HEAD.KEYPOINT_RADIUS
    with torch.no_grad():
        for index, record in enumerate(tqdm(records, desc=f"oracle {dataset}", unit="img")):
            sample = mapper(record)
            size = tuple(sample["image"].shape[-2:])
            exact = oracle_maps(sample, schema.num_parts, cfg.MODEL.DSPF.PART_HEAD.IGNORE_VALUE)
            gt = sample["instances"].gt_keypoints.tensor
            gt_parts = annotated_parts(record, schema) if show else None
            for level in levels:
                g = torch.Generator().manual_seed(seed * 1_000_003 + index)
                maps = exact if level == 0 else degrade_maps(exact, gt, size, stride, radius, DEGRADE_LEVELS[level], g)
                for a in associations:
                    people = decode_maps(maps, size, (record["height"], record["width"]), settings[a])
                    instances = people_to_instances(people)
                    evaluators[(level, a)].process([record], [{"instances": instances}])
                    if show:
                        lost, extra = show_mistakes(show_folder(show, dataset, a, level), record, gt_parts,
                                                    instances, schema)
                        shown[(level, a)][0].extend(lost)
                        shown[(level, a)][1].extend(extra)
                    c = counts[(level, a)]
                    c["decoded"] += len(people.scores)
                    c["gt"] += len(record.get("annotations", []))
                    # the matching's associations: a shared joint (complete_people) is another's
                    associated = torch.where(people.shared_joints[..., None], torch.zeros_like(people.poses), people.poses)
                    t, m, x = association_errors(associated, gt, schema.limbs)
                    c["true_pairs"] += t
                    c["missed"] += m
                    c["cross"] += x
    if show:
        for (level, a), (lost, extra) in shown.items():
            folder = show_folder(show, dataset, a, level)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "lost.txt"), "w") as f:
                f.write("".join(line + "\n" for line in lost + extra))
            print(f"{folder}: {len(lost)} lost annotated people, {len(extra)} extra decoded people")
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
        rows += evaluate(cfg, name, associations, args.degrade, args.seed, args.limit, args.show)
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
