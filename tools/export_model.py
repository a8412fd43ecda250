#!/usr/bin/env python
"""Export the network (backbone + heads) to TorchScript or ONNX; decoding stays outside.

Example::

    python tools/export_model.py --config-file configs/synthetic/dspf_R18_tiny.yaml \\
        --weights output/synthetic_R18_tiny/model_final.pth --format torchscript \\
        --output output/export/dspf_R18_tiny.ts --height 192 --width 192

The exported graph is :class:`dspf_parser.modeling.export.DSPFMapsExporter`: raw images
``[N, 3, H, W]`` (``INPUT.FORMAT`` channel order, 0-255; ``H`` and ``W`` multiples of the
backbone's size divisibility, 32) in, pixel normalisation, backbone, heads, softmax / sigmoid,
and the five maps ``part_probs, dspf, heatmaps, offsets, limb_heatmaps`` (stride 4) out. The
decoding (Hough voting, limb scoring, matching with scipy, grouping, pixel assignment) is not in
it: run :func:`dspf_parser.ops.decoding.decode_maps` on
:func:`dspf_parser.modeling.export.parsing_maps_from_outputs` of its outputs.

Both formats are traced at ``--height x --width`` (batch 1) and run at any other batch size
and any size of multiples of 32 (TorchScript: the trace records the shapes as they flow; ONNX:
dynamic batch, height and width axes). After saving, the file is loaded back and compared with
the eager model at the trace size and at one cell more in each dimension; the largest
difference of each map is printed.

``--format torchscript`` uses ``torch.jit.trace`` and needs nothing else. ``--format onnx``
uses torch's TorchScript-based ONNX exporter (``torch.onnx.export(..., dynamo=False)``, opset
17) and needs the ``onnx`` package; with ``onnxruntime`` the exported file is also checked.
Both are the optional extra ``pip install -e .[export]``.
"""
import argparse
import importlib.util
import os
import sys
import warnings
from typing import Dict, List, Optional, Sequence

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dspf_parser  # noqa: E402,F401  (registers DSPFParser and the heads)
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from dspf_parser import add_dspf_config  # noqa: E402
from dspf_parser.modeling.export import DSPFMapsExporter, check_export_size, parsing_maps_from_outputs  # noqa: E402
from dspf_parser.modeling.meta_arch import MAP_NAMES  # noqa: E402

FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 17  # grid_sample (the DSPF head's feature warping) needs opset >= 16
# The map axes that are the height and width of each output (all have the batch on axis 0).
_SPATIAL_AXES = {"part_probs": 2, "dspf": 2, "heatmaps": 2, "offsets": 3, "limb_heatmaps": 2}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Export DSPFParser's backbone + heads (image -> probability maps) to TorchScript or "
                    "ONNX. Decoding (Hough voting, matching with scipy, grouping, pixel assignment) is not "
                    "exported: run dspf_parser.ops.decoding.decode_maps on the outputs. ONNX needs the "
                    "optional packages onnx (and onnxruntime to check the file): pip install -e .[export].",
    )
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", metavar="CHECKPOINT", help="checkpoint to load (default: MODEL.WEIGHTS; "
                   "none: random weights, for testing the export only)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--output", required=True, metavar="FILE", help="the exported model (.ts / .onnx)")
    p.add_argument("--height", type=int, default=512, help="trace height (a multiple of 32; default 512)")
    p.add_argument("--width", type=int, default=512, help="trace width (a multiple of 32; default 512)")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], metavar="KEY VALUE",
                   help="config overrides, as KEY VALUE pairs (must come last)")
    args = p.parse_args(argv)
    if args.weights and not os.path.isfile(args.weights):
        p.error(f"--weights: file not found: {args.weights}")
    if args.format == "onnx" and importlib.util.find_spec("onnx") is None:
        p.error("--format onnx needs the 'onnx' package (pip install -e .[export], or pip install onnx onnxruntime)")
    return args


def setup_cfg(args: argparse.Namespace):
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(list(args.opts))
    if args.weights:
        cfg.MODEL.WEIGHTS = args.weights
    cfg.freeze()
    return cfg


def export_torchscript(exporter: DSPFMapsExporter, example: torch.Tensor, output: str) -> None:
    """Trace ``exporter`` on ``example`` and save it (``torch.jit.load`` reads it back)."""
    with torch.no_grad(), warnings.catch_warnings():
        # The traced graph has two shape checks that become constants (detectron2's Conv2d
        # empty-input branch, torch's group_norm "more than one value per channel"); both are
        # false for every valid input, and the reload check below runs a second size.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(exporter, (example,))
    traced.save(output)


def export_onnx(exporter: DSPFMapsExporter, example: torch.Tensor, output: str) -> None:
    """Export ``exporter`` to ONNX with dynamic batch, height and width."""
    axes: Dict[str, Dict[int, str]] = {"images": {0: "batch", 2: "height", 3: "width"}}
    axes.update({n: {0: "batch", a: "grid_height", a + 1: "grid_width"} for n, a in _SPATIAL_AXES.items()})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(exporter, (example,), output, dynamo=False, input_names=["images"],
                          output_names=list(MAP_NAMES), dynamic_axes=axes, opset_version=ONNX_OPSET)


def run_exported(fmt: str, path: str, images: torch.Tensor) -> Optional[List[torch.Tensor]]:
    """The five maps of the saved model on ``images``, or ``None`` for ONNX without onnxruntime."""
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            return list(torch.jit.load(path, map_location=images.device)(images))
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return [torch.from_numpy(o) for o in session.run(None, {"images": images.cpu().numpy()})]


def compare(model, fmt: str, path: str, height: int, width: int) -> Optional[Dict[str, float]]:
    """Largest absolute difference per map between the saved model and the eager model's
    :meth:`DSPFParser.predict_maps` on one random ``height x width`` image."""
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (1, 3, height, width), generator=g).float().to(model.device)
    exported = run_exported(fmt, path, image)
    if exported is None:
        return None
    with torch.no_grad():
        maps, sizes = model.predict_maps([{"image": image[0]}])
    got = parsing_maps_from_outputs([o.to(model.device) for o in exported], sizes[0], model.output_stride)
    return {n: (getattr(got, n) - getattr(maps[0], n)).abs().max().item() for n in MAP_NAMES}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Export; return ``{"output", "format", "trace_size", "max_abs_diff": {size: {map: diff}}}``."""
    args = parse_args(argv)
    cfg = setup_cfg(args)
    model = build_model(cfg).eval()
    if cfg.MODEL.WEIGHTS:
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    else:
        print("export_model: no --weights / MODEL.WEIGHTS: exporting RANDOM weights", file=sys.stderr)
    exporter = DSPFMapsExporter(model).eval()
    cell = max(exporter.size_divisibility, 1)
    try:
        check_export_size(args.height, args.width, cell)
    except ValueError as e:
        raise SystemExit(f"export_model: --height/--width: {e}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    example = torch.zeros(1, 3, args.height, args.width, device=model.device)
    (export_torchscript if args.format == "torchscript" else export_onnx)(exporter, example, args.output)
    print(f"export_model: wrote {args.format} {args.output} (traced at {args.height}x{args.width})")
    diffs = {}
    for h, w in ((args.height, args.width), (args.height + cell, args.width + cell)):
        diff = compare(model, args.format, args.output, h, w)
        if diff is None:
            print("export_model: onnxruntime is not installed: the ONNX file was not run")
            break
        diffs[f"{h}x{w}"] = diff
        print(f"export_model: {h}x{w} max |exported - eager|: "
              + ", ".join(f"{n} {d:.2e}" for n, d in diff.items()))
    return {"output": args.output, "format": args.format, "trace_size": (args.height, args.width),
            "max_abs_diff": diffs}


if __name__ == "__main__":
    main()
