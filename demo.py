#!/usr/bin/env python
"""Run dspf-parser on images or a video and write pictures plus MHPv2 submission files.

    python demo.py --config-file configs/synthetic/dspf_R18_tiny.yaml \
        --input "photos/*.jpg" more.png --output out/ \
        --opts MODEL.WEIGHTS output/synthetic_R18_tiny/model_final.pth
    python demo.py --config-file CFG --video-input clip.mp4 --output out/ --opts MODEL.WEIGHTS W

For every input image ``<name>.<ext>`` it writes into ``--output``:

* ``<name>_parsing.png``: the instance-aware overlay (parts in the part palette, person outlines,
  skeletons and scores in one colour per person), see ``dspf_parser.utils.visualizer``;
* ``<name>_parts.png``: the category-level part map (argmax of ``sem_seg``), colour-coded;
* the MHPv2 submission files under ``--submission-dir`` (default ``<output>/submission``):
  ``parsing/<name>_<k>.png`` per person, ``results.json`` for the run, and the official
  evaluation kit's ``global_seg/``, ``global_tag/``, ``results.txt``; layout in
  ``dspf_parser.utils.mhp_submission``;
* with ``--coco-json FILE``, every person of every image as a COCO result in ``FILE`` (one json
  list for the run; ``image_id`` is the image's file stem, ``<name>``; keypoints, score, XYWH
  box, RLE person mask and per-part RLEs, see ``dspf_parser.evaluation.coco_results``).

A video gives ``<output>/<video name>_parsing.mp4`` (``mp4v``), the overlay of every frame.
``--confidence-threshold`` drops people whose score (the instances' ``scores``: rank scores, see
``MODEL.DSPF.INFERENCE.PERSON_SUPPORT_POWER`` and ``PART_CONFIDENCE_POWER``; they can exceed 1) is below it, from the
pictures, from the submission and from the COCO json. ``--input`` takes files, folders (their images) and glob
patterns. ``--opts KEY VALUE ...`` overrides the config (keep it last). The preprocessing is
``dspf_parser.engine.predictor.DSPFPredictor``: images go in at their own size when
``INPUT.MIN_SIZE_TEST`` is 0.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
from typing import List, Optional, Sequence

import cv2
import numpy as np
import tqdm
from detectron2.config import get_cfg
from detectron2.utils.logger import setup_logger

import dspf_parser  # noqa: F401  (registers the model, heads and datasets)
from dspf_parser import add_dspf_config
from dspf_parser.engine.predictor import DSPFPredictor
from dspf_parser.evaluation.coco_results import instances_to_coco_results
from dspf_parser.utils.mhp_submission import MHPSubmissionWriter
from dspf_parser.utils.visualizer import draw_parsing, draw_part_map

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
logger = logging.getLogger("dspf_parser.demo")


class DemoError(RuntimeError):
    """A problem with the command line or the inputs, reported without a traceback."""


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="dspf-parser demo: instance-aware human part parsing")
    parser.add_argument("--config-file", default="configs/synthetic/dspf_R18_tiny.yaml", metavar="FILE",
                        help="path to config file")
    parser.add_argument("--input", nargs="+", help="image files, folders or glob patterns (quote globs), "
                        "e.g. --input 'dir/*.jpg' other.png")
    parser.add_argument("--video-input", help="path to a video file")
    parser.add_argument("--output", help="output folder (created)")
    parser.add_argument("--submission-dir", help="where the MHPv2 submission files go (default <output>/submission)")
    parser.add_argument("--coco-json", metavar="FILE",
                        help="also write the people of the --input images as COCO results (image_id: file stem)")
    parser.add_argument("--confidence-threshold", type=float, default=0.0,
                        help="minimum person score to draw and to submit (default 0: every person the model keeps)")
    parser.add_argument("--opts", help="modify config options using the command-line 'KEY VALUE' pairs",
                        default=[], nargs=argparse.REMAINDER)
    return parser


def setup_cfg(args: argparse.Namespace):
    cfg = get_cfg()
    add_dspf_config(cfg)
    if not os.path.isfile(args.config_file):
        raise DemoError(f"config file not found: {args.config_file}")
    cfg.merge_from_file(args.config_file)
    if len(args.opts) % 2:
        raise DemoError(f"--opts needs KEY VALUE pairs, got {len(args.opts)} items: {args.opts}")
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    return cfg


def expand_inputs(patterns: Sequence[str]) -> List[str]:
    """Files named by ``patterns`` (files, folders, globs), in order, without duplicates.

    Raises:
        DemoError: a pattern matches nothing, or a named file is not a readable image.
    """
    files: List[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            matched = sorted(os.path.join(pattern, n) for n in os.listdir(pattern)
                             if n.lower().endswith(IMAGE_EXTENSIONS))
        elif os.path.isfile(pattern):
            matched = [pattern]
        else:
            matched = sorted(p for p in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(p))
        if not matched:
            raise DemoError(f"no input matched {pattern!r}")
        files.extend(p for p in matched if p not in files)
    for path in files:
        if not os.access(path, os.R_OK) or not cv2.haveImageReader(path):
            raise DemoError(f"cannot read image {path!r}: not an image file OpenCV can decode")
    return files


def _image_names(files: Sequence[str]) -> List[str]:
    names, seen = [], {}
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        if name in seen:
            raise DemoError(f"two inputs share the name {name!r}: {seen[name]!r} and {path!r} "
                            "(outputs are named after the file name)")
        if not name or any(c.isspace() for c in name):
            raise DemoError(f"input {path!r}: file names with whitespace are not supported by the MHPv2 results.txt")
        seen[name] = path
        names.append(name)
    return names


def _write(path: str, image: np.ndarray) -> None:
    if not cv2.imwrite(path, image):
        raise DemoError(f"could not write {path}")


def run_images(predictor: DSPFPredictor, files: Sequence[str], args: argparse.Namespace) -> None:
    names = _image_names(files)
    submission_dir = args.submission_dir or os.path.join(args.output, "submission")
    coco_results = []
    with MHPSubmissionWriter(submission_dir, predictor.schema, args.confidence_threshold) as writer:
        for path, name in zip(tqdm.tqdm(files, desc="images", unit="img"), names):
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise DemoError(f"cannot read image {path!r}")
            outputs = predictor(image)
            part_map = outputs["sem_seg"].argmax(0).to("cpu").numpy().astype(np.uint8)
            instances = outputs["instances"].to("cpu")
            overlay = draw_parsing(image, instances, confidence_threshold=args.confidence_threshold,
                                   limbs=predictor.schema.limbs)
            _write(os.path.join(args.output, f"{name}_parsing.png"), overlay)
            _write(os.path.join(args.output, f"{name}_parts.png"), draw_part_map(part_map))
            writer.add(name, instances, part_map=part_map, file_name=os.path.abspath(path))
            if args.coco_json:
                kept = instances[instances.scores >= args.confidence_threshold] if len(instances) else instances
                coco_results.extend(instances_to_coco_results(kept, name))
            shown = int((instances.scores >= args.confidence_threshold).sum()) if len(instances) else 0
            logger.info("%s: %d people", path, shown)
    if args.coco_json:
        folder = os.path.dirname(os.path.abspath(args.coco_json))
        os.makedirs(folder, exist_ok=True)
        with open(args.coco_json, "w") as f:
            json.dump(coco_results, f)
        logger.info("wrote %d COCO results to %s", len(coco_results), args.coco_json)
    logger.info("wrote pictures to %s and the submission to %s", args.output, submission_dir)


def run_video(predictor: DSPFPredictor, path: str, args: argparse.Namespace) -> str:
    if not os.path.isfile(path):
        raise DemoError(f"video not found: {path!r}")
    video = cv2.VideoCapture(path)
    if not video.isOpened():
        raise DemoError(f"cannot read video {path!r}")
    width = int(video.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(video.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = video.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 else 25.0
    total = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    out_path = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0] + "_parsing.mp4")
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height), True)
    if not writer.isOpened():
        video.release()
        raise DemoError(f"cannot open video writer for {out_path!r} (mp4v codec)")
    frames = 0
    try:
        with tqdm.tqdm(total=total if total > 0 else None, desc="frames", unit="frame") as bar:
            while True:
                ok, frame = video.read()
                if not ok:
                    break
                outputs = predictor(frame)
                writer.write(draw_parsing(frame, outputs["instances"].to("cpu"),
                                          confidence_threshold=args.confidence_threshold,
                                          limbs=predictor.schema.limbs))
                frames += 1
                bar.update(1)
    finally:
        video.release()
        writer.release()
    if frames == 0:
        raise DemoError(f"no frame could be read from {path!r}")
    logger.info("wrote %d frames to %s", frames, out_path)
    return out_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; raises :class:`DemoError` on bad inputs (the script prints it and exits 2)."""
    args = get_parser().parse_args(argv)
    setup_logger(name="fvcore")
    setup_logger(name="dspf_parser")
    logger.info("Arguments: %s", args)
    if bool(args.input) == bool(args.video_input):
        raise DemoError("give exactly one of --input and --video-input")
    if not args.output:
        raise DemoError("--output is required (a folder)")
    if args.coco_json and not args.input:
        raise DemoError("--coco-json needs --input images (it is not written for --video-input)")
    files = expand_inputs(args.input) if args.input else []
    cfg = setup_cfg(args)
    os.makedirs(args.output, exist_ok=True)
    predictor = DSPFPredictor(cfg)
    if files:
        run_images(predictor, files, args)
    else:
        run_video(predictor, args.video_input, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DemoError as e:
        print(f"demo.py: error: {e}", file=sys.stderr)
        sys.exit(2)
