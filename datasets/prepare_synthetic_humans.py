#!/usr/bin/env python
"""Write a synthetic multi-person part-parsing dataset in the LV-MHP-v2 layout.

Example::

    python datasets/prepare_synthetic_humans.py --output datasets/synthetic_humans \
        --num-train 2000 --num-val 200 --seed 0 --size 128 128 --max-people 4 --preview 8

writes ``<output>/{train,val}/{images,parsing_annos,pose_annos}``, ``<output>/list/*.txt`` and,
with ``--preview N``, N PNG panels ``[image + joints | parts | instances + boxes]`` of the
training split into ``<output>/preview/`` (read back from disk, so they show what was saved).
Joints: green = the person's left, red = right, filled = visible, ring = occluded.
"""
import argparse
import os
import sys

import cv2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dspf_parser.data.mhp_v2_layout import load_mhp_v2_split, read_person_maps  # noqa: E402
from dspf_parser.data.synthetic_cache import write_synthetic_split  # noqa: E402
from dspf_parser.data.synthetic import draw_preview  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, help="dataset root (gets list/, train/, val/)")
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-val", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    p.add_argument("--max-people", type=int, default=4)
    p.add_argument("--preview", type=int, default=0, metavar="N",
                   help="write N colour-coded preview PNGs into <output>/preview/")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def write_previews(root: str, split: str, count: int) -> list:
    import numpy as np

    out_dir = os.path.join(root, "preview")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for rec in load_mhp_v2_split(root, split)[:count]:
        image = cv2.imread(rec["file_name"], cv2.IMREAD_COLOR)
        part_map, instance_map = read_person_maps(rec)
        kps = np.array([a["keypoints"] for a in rec["annotations"]], np.float32).reshape(-1, 16, 3)
        boxes = np.array([a["bbox"] for a in rec["annotations"]], np.float32).reshape(-1, 4)
        scale = max(1, 512 // max(rec["height"], rec["width"]))
        panel = draw_preview(image, part_map, instance_map, kps, boxes, scale=scale)
        path = os.path.join(out_dir, f"{split}_{rec['image_id']}.png")
        cv2.imwrite(path, panel)
        paths.append(path)
    return paths


def main(argv=None) -> None:
    args = parse_args(argv)
    for split, num in (("train", args.num_train), ("val", args.num_val)):
        if num > 0:
            write_synthetic_split(args.output, split, num, args.seed, tuple(args.size),
                                  args.max_people, progress=not args.no_progress)
    if args.preview > 0:
        paths = write_previews(args.output, "train" if args.num_train > 0 else "val", args.preview)
        print(f"wrote {len(paths)} previews to {os.path.join(args.output, 'preview')}")
    print(f"dataset written to {args.output}")


if __name__ == "__main__":
    main()
