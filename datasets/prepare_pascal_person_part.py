#!/usr/bin/env python
"""Check a PASCAL-Person-Part copy, draw a few images, and write what is missing.

The instance-level folder copy (``Training/``, ``Testing/`` with ``Images/``,
``Category_ids/``, ``Human_ids/``; lists in ``tools/{train,test}_id.txt``; Xia et al. joints in
``pose_annotations/<id>.mat``) is read as it is by ``dspf_parser`` (layout and the facts that
are only likely: ``dspf_parser/data/datasets/pascal_person_part.py``). This tool::

    # counts per split: images, persons, persons with linked joints, part pixels per class
    python datasets/prepare_pascal_person_part.py --root datasets/pascal-person-part
    # and N panels [image + joints | parts | persons] per split into OUT/ to check by eye that
    # the part order (--label-order), the joint order and the pose linking are right
    python datasets/prepare_pascal_person_part.py --root datasets/pascal-person-part --preview 8 --output OUT
    # a copy without list files: write tools/{train,test}_id.txt from Images/
    python datasets/prepare_pascal_person_part.py --root datasets/pascal-person-part --write-lists

Panels: parts coloured by schema id (legend on the left of the parts panel, top to bottom:
Head, Torso, Upper-arms, Lower-arms, Upper-legs, Lower-legs), persons by id; joints green =
the person's left, red = right, yellow = centre, filled = visible, ring = occluded. With the
right part order heads are at the top of people and lower legs at the bottom; with the right
joint order the green joints sit on the person's left limbs.
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dspf_parser.data.annotations import load_human_annotations  # noqa: E402
from dspf_parser.data.categories import PASCAL_PERSON_PART_SCHEMA as S  # noqa: E402
from dspf_parser.data.datasets.pascal_person_part import (  # noqa: E402
    DEFAULT_LABEL_ORDER,
    LABEL_ORDERS,
    PASCAL_PERSON_PART_SPLITS,
    load_pascal_person_part_split,
)
from dspf_parser.data.synthetic import colorize_instance_map, colorize_part_map  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="the pascal-person-part folder")
    p.add_argument("--label-order", default=DEFAULT_LABEL_ORDER, choices=sorted(LABEL_ORDERS))
    p.add_argument("--missing-joints", default="error", choices=("error", "skip"))
    p.add_argument("--preview", type=int, default=0, metavar="N", help="draw N images per split into --output")
    p.add_argument("--output", help="folder of the preview panels")
    p.add_argument("--write-lists", action="store_true",
                   help="write tools/<list> from Images/ for each split that has no list file")
    return p.parse_args(argv)


def write_lists(root: str) -> list:
    """Write ``tools/<list>`` from ``<split>/Images/*.jpg`` where neither ``<split>/<list>`` nor
    ``tools/<list>`` exists; returns the files written."""
    written = []
    for split, list_name in PASCAL_PERSON_PART_SPLITS.values():
        images = os.path.join(root, split, "Images")
        target = os.path.join(root, "tools", list_name)
        if not os.path.isdir(images) or os.path.exists(target) or os.path.exists(os.path.join(root, split, list_name)):
            continue
        ids = sorted(os.path.splitext(n)[0] for n in os.listdir(images) if n.lower().endswith(".jpg"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write("".join(i + "\n" for i in ids))
        written.append(target)
    return written


def draw_record(record: dict, scale: int = 2) -> np.ndarray:
    """``[image + joints | parts (with legend) | persons + boxes]`` BGR panel of one record."""
    gt = load_human_annotations(record, S.num_parts, S.num_keypoints)
    image = cv2.imread(record["file_name"])
    h, w = gt.part_map.shape
    size = (w * scale, h * scale)
    im = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
    parts = cv2.resize(colorize_part_map(gt.part_map), size, interpolation=cv2.INTER_NEAREST)
    inst = cv2.resize(colorize_instance_map(gt.instance_map), size, interpolation=cv2.INTER_NEAREST)
    for c in range(1, S.num_parts):  # legend: one swatch per part id, top to bottom
        parts[4 + 10 * (c - 1):12 + 10 * (c - 1), 2:10] = colorize_part_map(np.uint8([[c]]))[0, 0]

    def pt(x, y):
        return int(round(x * scale + (scale - 1) / 2)), int(round(y * scale + (scale - 1) / 2))

    for kp in gt.keypoints:
        for a, b in S.limbs:
            if kp[a, 2] > 0 and kp[b, 2] > 0:
                cv2.line(im, pt(*kp[a, :2]), pt(*kp[b, :2]), (255, 255, 255), 1, cv2.LINE_AA)
        for j, (x, y, v) in enumerate(kp):
            if v <= 0:
                continue
            name = S.keypoint_names[j]
            col = (0, 255, 0) if name.startswith("Left") else (0, 0, 255) if name.startswith("Right") else (0, 255, 255)
            cv2.circle(im, pt(x, y), 3, col, -1 if v == 2 else 1)
    for a in record["annotations"]:
        x0, y0, x1, y1 = a["bbox"]
        cv2.rectangle(inst, (int(x0 * scale), int(y0 * scale)), (int(x1 * scale) - 1, int(y1 * scale) - 1),
                      (255, 255, 255), 1)
    return np.concatenate([im, parts, inst], axis=1)


def summarize(records: list) -> dict:
    persons = [a for r in records for a in r["annotations"]]
    pixels = np.zeros(S.num_parts, np.int64)
    for r in records:
        pixels += np.bincount(load_human_annotations(r, S.num_parts, S.num_keypoints).part_map.ravel(),
                              minlength=S.num_parts)
    return {"images": len(records), "persons": len(persons),
            "persons_with_joints": sum(1 for a in persons if any(a["keypoints"][2::3])),
            "part_pixels": {S.part_classes[c]: int(pixels[c]) for c in range(1, S.num_parts)}}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.preview and not args.output:
        raise SystemExit("--preview needs --output")
    if args.write_lists:
        for path in write_lists(args.root):
            print(f"wrote {path}")
    for name, (split, list_name) in PASCAL_PERSON_PART_SPLITS.items():
        split_dir = os.path.join(args.root, split)
        if not os.path.isdir(split_dir):
            print(f"{name}: {split_dir} not found, skipped")
            continue
        records = load_pascal_person_part_split(split_dir, list_name, args.label_order, args.missing_joints)
        print(f"{name}: {summarize(records)}")
        if args.preview:
            os.makedirs(args.output, exist_ok=True)
            for r in records[:args.preview]:
                path = os.path.join(args.output, f"{split}_{r['image_id']}.png")
                if not cv2.imwrite(path, draw_record(r)):
                    raise OSError(f"could not write {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
