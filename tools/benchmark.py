#!/usr/bin/env python
"""Cost of the whole DSPF parser: network FLOPs and parameters, per-stage wall time.

Example::

    python tools/benchmark.py --config-file configs/synthetic/dspf_R18_tiny.yaml \
        --input-size 512 512 --people 1 20 60 --repeats 5 --device cpu --threads 1 \
        --output benchmark.jsonl

    # real network outputs too: a checkpoint and real images (resized to --input-size)
    python tools/benchmark.py --config-file configs/synthetic/dspf_R18_tiny.yaml \
        --weights output/model_final.pth --images a.jpg b.jpg --people 1 20 60

What is measured
----------------
* **FLOPs and parameters** of the network (backbone + part, field and pose heads) on one
  input of ``--input-size``, with fvcore's ``FlopCountAnalysis``. fvcore counts one fused
  multiply-add as ONE flop, so ``gflops`` is in "G multiply-adds" (the "M-Adds" of the
  paper's complexity table). Convolutions, norms, upsampling and the ``grid_sample`` of the
  feature warping are counted; operators fvcore has no formula for (element-wise ``add`` /
  ``mul`` / ``div``, max-pooling) are not, and their names and call counts are listed in
  ``flops_uncounted_ops`` (activations are ignored silently). ``params`` counts the
  parameters of backbone + heads (``params_model``: the whole ``DSPFParser``, loss balancer
  and matching layer included).
* **Wall time** (milliseconds, median over ``--repeats`` runs after ``--warmup`` runs) of

  - ``backbone_and_heads``: a real eval-mode forward of ``model.preprocess_image``,
    ``model.backbone`` and the three heads on a synthetic image holding the requested number of
    people (the network cost does not depend on the content);
  - the decoding stages ``keypoint_detection``, ``limb_scoring``, ``matching``, ``grouping``,
    ``pixel_assignment`` (``ParsedPeople.stage_seconds`` of ``decode_maps``: maps -> people,
    their instance map and the part label of every output pixel), and ``total_decoding``
    (``maps_of_batch`` + ``decode_maps``, map slicing/softmax/sigmoid included);
  - ``dense_outputs``: the part probabilities ``[C, H', W']`` and the DSPF at every output
    pixel (``dense_outputs``), i.e. the ``sem_seg`` and ``dspf`` fields of the model's
    results, which any semantic segmentor returns; timed apart from the decoding, which does
    not need them;
  - ``total``: ``backbone_and_heads + total_decoding + dense_outputs`` of the same run.

  The decoding does NOT run on the network's outputs (random weights unless
  ``MODEL.WEIGHTS`` is set: no people) but on PERFECT maps rendered from the image's ground
  truth with ``dspf_parser.ops.targets`` (keypoint disks + offsets, limb heatmaps, DSPF, a
  one-hot part segmentation), so its cost is that of exactly ``N`` well-separated people;
  ``decoded_people`` is how many it found (``source: "perfect_maps"``). Up to 60 people fit
  a 512 x 512 canvas (one layout cell each).
* ``scipy_loop``: the association stage's own problems (the limb scores and admissible pairs
  of the image's candidates), solved by a plain Python loop of
  ``scipy.optimize.linear_sum_assignment`` over the limbs, next to ``matching`` (the
  configured ``MODEL.DSPF.INFERENCE.ASSOCIATION`` on the same problems).
* **Real-model path** (``--images`` with ``--weights CHECKPOINT``): every image file is read,
  resized to ``--input-size`` and run through the network; the decoding then runs on the
  network's real outputs (``source: "model"``, ``image``: the file, ``people``: null). Same
  stage fields.

  On CUDA every timed region is bracketed by ``torch.cuda.synchronize()``.

Output: an aligned table on stdout (one row per device and people) and, with ``--output``,
one JSON line per (device, people) holding every field above plus the config, overrides,
input size, threads, torch / detectron2 versions and the device name. Devices: ``--device``
(default: the CPU, and CUDA when available). Nothing is asserted.
"""
import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import detectron2  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

import dspf_parser  # noqa: E402,F401  (registers the meta-architecture and heads)
from dspf_parser import add_dspf_config  # noqa: E402
from dspf_parser.data.categories import get_schema  # noqa: E402
from dspf_parser.data.synthetic import SyntheticSample, render_people, sample_person_params  # noqa: E402
from dspf_parser.modeling.pose_head import PoseMaps  # noqa: E402
from dspf_parser.modeling.meta_arch import maps_of_batch  # noqa: E402
from dspf_parser.data.dataset_mapper import read_image_checked  # noqa: E402
from dspf_parser.ops.decoding import decode_maps, dense_outputs, find_candidates  # noqa: E402
from dspf_parser.ops.limb_scoring import score_limbs  # noqa: E402
from dspf_parser.ops.targets import dspf_targets, grid_coordinates, keypoint_targets, limb_targets  # noqa: E402

DECODING_STAGES = ("keypoint_detection", "limb_scoring", "matching", "grouping", "pixel_assignment")
STAGES = ("backbone_and_heads",) + DECODING_STAGES + ("scipy_loop", "total_decoding", "dense_outputs", "total")
# Extent of a rendered person (pixels of any pose within the joint limits), in units of its
# height, relative to the pelvis: x in [-0.52, 0.46], y in [-0.54, 0.59] (measured on 150
# random people); the layout below leaves a margin around it.
PERSON_WIDTH, PERSON_HEIGHT = 1.05, 1.15
PERSON_CENTRE = (-0.03, 0.025)  # centre of that extent, relative to the pelvis, in heights
LAYOUT_MARGIN = 0.85  # fraction of a cell a person may fill
PART_LOGIT = 10.0  # logit of the true part class in the perfect part segmentation


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------
def setup_cfg(config_file: str, opts: Sequence[str]):
    """The frozen detectron2 config: defaults + ``add_dspf_config`` + the file + ``opts``."""
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    cfg.freeze()
    return cfg


def build_eval_model(cfg) -> nn.Module:
    """``build_model(cfg)`` in eval mode on the CPU, with ``MODEL.WEIGHTS`` loaded if set."""
    torch.manual_seed(0)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return model.eval()


class Network(nn.Module):
    """Backbone + the three heads of a ``DSPFParser`` as one traceable module.

    ``forward(normalised images [N, 3, H, W])`` returns the tuple ``(part_logits, field,
    heatmap_logits, offsets, limb_logits)``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone = model.backbone
        self.part_head = model.part_head
        self.field_head = model.field_head
        self.pose_head = model.pose_head

    def forward(self, images: torch.Tensor):
        features = self.backbone(images)
        pose = self.pose_head(features)
        return (self.part_head(features), self.field_head(features),
                pose.heatmap_logits, pose.offsets, pose.limb_logits)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (elements) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def network_flops(model: nn.Module, input_size: Tuple[int, int]) -> Dict[str, object]:
    """fvcore FLOPs (1 multiply-add = 1 flop) of backbone + heads on one ``H x W`` input.

    Returns ``gflops`` (total, 1e9), ``gflops_by_module`` (backbone and each head) and
    ``flops_uncounted_ops`` (operator name -> calls that fvcore could not count).
    """
    from fvcore.nn import FlopCountAnalysis

    net = Network(model).eval()
    image = torch.zeros(3, *input_size)
    with torch.no_grad():
        images = model.preprocess_image([{"image": image}]).tensor.cpu()
        analysis = FlopCountAnalysis(net, (images,))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        total = analysis.total()
        by_module = analysis.by_module()
    return {
        "gflops": total / 1e9,
        "gflops_by_module": {name: by_module[name] / 1e9 for name in
                             ("backbone", "part_head", "field_head", "pose_head")},
        "flops_uncounted_ops": dict(sorted(Counter(analysis.unsupported_ops()).items())),
    }


# ----------------------------------------------------------------------------------------------
# Scenes with a controlled number of people, and their perfect network maps
# ----------------------------------------------------------------------------------------------
def grid_layout(num_people: int, image_size: Tuple[int, int]) -> Tuple[int, int]:
    """``(rows, cols)`` of a layout with one person per cell and cells about person-shaped."""
    height, width = image_size
    aspect = (width / PERSON_WIDTH) / (height / PERSON_HEIGHT)
    cols = max(1, min(num_people, round(math.sqrt(num_people * aspect))))
    return math.ceil(num_people / cols), cols


def make_scene(num_people: int, image_size: Tuple[int, int], seed: int = 0) -> SyntheticSample:
    """A synthetic image of exactly ``num_people`` random people, one per layout cell.

    Poses and appearances are drawn by :func:`sample_person_params`; each person is scaled to
    fit its cell with a margin, so nobody overlaps and every joint lies in the image.
    """
    rng = np.random.default_rng(seed)
    rows, cols = grid_layout(num_people, image_size)
    cell_h, cell_w = image_size[0] / rows, image_size[1] / cols
    height = LAYOUT_MARGIN * min(cell_h / PERSON_HEIGHT, cell_w / PERSON_WIDTH)
    people = []
    for slot in rng.permutation(rows * cols)[:num_people]:
        cx, cy = (slot % cols + 0.5) * cell_w, (slot // cols + 0.5) * cell_h
        pelvis = (cx - PERSON_CENTRE[0] * height, cy - PERSON_CENTRE[1] * height)
        person = sample_person_params(rng, image_size)
        people.append(dataclasses.replace(person, pelvis=pelvis, height=height))
    sample = render_people(people, image_size, background_seed=seed)
    if sample.num_people != num_people:
        raise RuntimeError(f"{num_people} people requested, {sample.num_people} rendered at {image_size}")
    return sample


def to_logits(probabilities: torch.Tensor) -> torch.Tensor:
    """Logits of probabilities, clamped to ``[1e-4, 1 - 1e-4]`` to stay finite."""
    return torch.logit(probabilities.clamp(1e-4, 1 - 1e-4))


def part_logits_from_map(part_map: torch.Tensor, num_classes: int, stride: int) -> torch.Tensor:
    """One-hot part logits ``[C, h, w]`` (+-``PART_LOGIT``) of ``part_map`` read at the grid cells."""
    ys, xs = grid_coordinates(part_map.shape[0], part_map.shape[1], stride)
    rows = ys.long().clamp(max=part_map.shape[0] - 1)
    cols = xs.long().clamp(max=part_map.shape[1] - 1)
    labels = part_map[rows[:, None], cols[None, :]].long()
    one_hot = torch.nn.functional.one_hot(labels, num_classes).permute(2, 0, 1).float().contiguous()
    return (2 * one_hot - 1) * PART_LOGIT


def perfect_maps(sample: SyntheticSample, model: nn.Module, cfg) -> Tuple[torch.Tensor, torch.Tensor, PoseMaps]:
    """The maps a perfect network would output for ``sample`` (batch of one, CPU).

    Returns ``(part_logits [1, C, h, w], field [1, 2, h, w], PoseMaps)`` on the stride-``s``
    grid of ``model`` (``h, w = ceil(H / s), ceil(W / s)``).
    """
    stride, size = model.output_stride, sample.part_map.shape
    keypoints = torch.from_numpy(sample.keypoints)
    heat, offsets, _ = keypoint_targets(keypoints, size, stride, model.keypoint_radius)
    limbs = limb_targets(keypoints, model.limbs, size, stride, cfg.MODEL.DSPF.POSE_HEAD.LIMB_SIGMA)
    field, _ = dspf_targets(torch.from_numpy(sample.instance_map).long(), keypoints, stride)
    num_classes = get_schema(cfg.MODEL.DSPF.SCHEMA).num_parts
    parts = part_logits_from_map(torch.from_numpy(sample.part_map), num_classes, stride)
    # Contiguous like the network's outputs (its offsets are a view of an NCHW convolution;
    # the targets' offsets are strided per point).
    pose = PoseMaps(to_logits(heat)[None], offsets[None].contiguous(), to_logits(limbs)[None])
    return parts[None], field[None], pose


def pose_maps_to(pose: PoseMaps, device: torch.device) -> PoseMaps:
    """``pose`` with every tensor moved to ``device``."""
    return PoseMaps(*(t.to(device) for t in (pose.heatmap_logits, pose.offsets, pose.limb_logits)))


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------
def make_timer(device: torch.device) -> Callable[[], float]:
    """``time.perf_counter``, preceded by ``torch.cuda.synchronize`` on a CUDA device."""
    if device.type == "cuda":
        def timer() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()
        return timer
    return time.perf_counter


def time_network(model: nn.Module, image: torch.Tensor, timer: Callable[[], float]):
    """Seconds of one eval forward of preprocessing + backbone + the three heads, and the
    outputs ``(part_logits, field, PoseMaps)`` of that forward."""
    with torch.no_grad():
        start = timer()
        images = model.preprocess_image([{"image": image}])
        features = model.backbone(images.tensor)
        part_logits = model.part_head(features)
        field = model.field_head(features)
        pose = model.pose_head(features)
        return timer() - start, (part_logits, field, pose)


def scipy_loop(limb_scores: torch.Tensor, pair_valid: torch.Tensor) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The plain reference association: one ``linear_sum_assignment`` per limb on the weights
    ``max(score, 0)`` of the admissible pairs ``[L, N, N]`` (host copy included)."""
    from scipy.optimize import linear_sum_assignment

    weights = torch.where(pair_valid, limb_scores.clamp_min(0), torch.zeros(())).cpu().double().numpy()
    return [linear_sum_assignment(w, maximize=True) for w in weights]


def time_decoding(model: nn.Module, maps, input_size: Tuple[int, int],
                  timer: Callable[[], float]) -> Tuple[Dict[str, float], int]:
    """Seconds of each decoding stage and of the whole decoding (the model's own
    ``maps_of_batch`` + ``decode_maps`` seam, output at the input size), of the model's
    ``dense_outputs`` and of the ``scipy_loop`` on the association problems of the same maps;
    people decoded."""
    part_logits, field, pose = maps
    settings = model.decoding
    with torch.no_grad():
        start = timer()
        parsing = maps_of_batch(part_logits, field, pose, [input_size], model.output_stride)[0]
        people = decode_maps(parsing, input_size, input_size, settings, timer=timer)
        total = timer() - start
        start = timer()
        dense_outputs(parsing, model.output_stride, input_size, input_size)
        dense = timer() - start
        coords, _, valid = find_candidates(parsing, settings)
        limb_scores, pair_valid = score_limbs(parsing.limb_heatmaps, coords, valid, settings.limbs,
                                              settings.stride, template_sigma=settings.limb_template_sigma,
                                              prune_below=settings.limb_prune_below)
        start = timer()
        scipy_loop(limb_scores, pair_valid)
        reference = timer() - start
    seconds = {stage: people.stage_seconds[stage] for stage in DECODING_STAGES}
    seconds.update(total_decoding=total, dense_outputs=dense, scipy_loop=reference)
    return seconds, int(people.scores.shape[0])


def time_runs(model: nn.Module, image: torch.Tensor, maps: Optional[Tuple], input_size: Tuple[int, int],
              device: torch.device, repeats: int, warmup: int,
              progress: Optional[tqdm] = None) -> Dict[str, object]:
    """Median milliseconds of every stage over ``repeats`` runs after ``warmup`` runs, and the
    people decoded. ``maps``: the maps to decode (perfect maps), or ``None`` to decode the
    network's own outputs of each run."""
    timer = make_timer(device)
    runs: Dict[str, List[float]] = {stage: [] for stage in STAGES}
    decoded = 0
    for run in range(warmup + repeats):
        network, outputs = time_network(model, image, timer)
        seconds, decoded = time_decoding(model, maps if maps is not None else outputs, input_size, timer)
        if run >= warmup:
            seconds.update(backbone_and_heads=network,
                           total=network + seconds["total_decoding"] + seconds["dense_outputs"])
            for stage in STAGES:
                runs[stage].append(seconds[stage])
        if progress is not None:
            progress.update(1)
    record: Dict[str, object] = {f"{stage}_ms": 1e3 * statistics.median(runs[stage]) for stage in STAGES}
    record["decoded_people"] = decoded
    return record


def benchmark_run(model: nn.Module, cfg, device: torch.device, num_people: int,
                  input_size: Tuple[int, int], repeats: int, warmup: int, seed: int,
                  progress: Optional[tqdm] = None) -> Dict[str, object]:
    """Perfect-map path: median milliseconds of every stage for one (device, people) pair, and
    people decoded. ``model`` must already be on ``device``. ``progress`` is advanced once per run.
    """
    sample = make_scene(num_people, input_size, seed)
    image = torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1))).to(device)
    part_logits, field, pose = perfect_maps(sample, model, cfg)
    maps = (part_logits.to(device), field.to(device), pose_maps_to(pose, device))
    record = time_runs(model, image, maps, tuple(input_size), device, repeats, warmup, progress)
    return dict(record, source="perfect_maps")


def load_image(file_name: str, image_format: str, input_size: Tuple[int, int]) -> torch.Tensor:
    """``[3, H, W]`` float image of ``file_name`` (channels in ``image_format``), bilinearly resized
    to ``input_size``; errors name the file."""
    array = read_image_checked(file_name, image_format)
    image = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float()
    return torch.nn.functional.interpolate(image[None], size=tuple(input_size), mode="bilinear",
                                           align_corners=False)[0]


def model_run(model: nn.Module, cfg, device: torch.device, file_name: str, input_size: Tuple[int, int],
              repeats: int, warmup: int, progress: Optional[tqdm] = None) -> Dict[str, object]:
    """Real-model path: the network's outputs on a real image, decoded; same fields as
    :func:`benchmark_run` plus ``image``."""
    image = load_image(file_name, cfg.INPUT.FORMAT, input_size).to(device)
    record = time_runs(model, image, None, tuple(input_size), device, repeats, warmup, progress)
    return dict(record, source="model", image=file_name)


# ----------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------
def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model (from /proc/cpuinfo when readable)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def format_table(records: List[Dict[str, object]]) -> str:
    """An aligned text table of the records (one row per device and people, milliseconds)."""
    heads = ["device", "source", "people", "found"] + [s.replace("backbone_and_heads", "network") for s in STAGES]
    rows = [[str(r["device"]), "model" if r["source"] == "model" else "perfect",
             "-" if r["people"] is None else str(r["people"]), str(r["decoded_people"])]
            + [f"{r[f'{s}_ms']:.2f}" for s in STAGES] for r in records]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def default_devices() -> List[str]:
    """CPU, plus CUDA when available."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--input-size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    parser.add_argument("--people", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before them")
    parser.add_argument("--device", nargs="+", choices=["cpu", "cuda"], default=None,
                        help="devices to time (default: cpu, and cuda when available)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic scenes")
    parser.add_argument("--weights", metavar="CHECKPOINT", help="checkpoint to load (sets MODEL.WEIGHTS)")
    parser.add_argument("--images", nargs="+", default=[], metavar="FILE",
                        help="real images: also time the network + decoding on its real outputs "
                             "(needs --weights)")
    parser.add_argument("--output", metavar="FILE.jsonl", help="write one JSON line per (device, people)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], metavar="KEY VALUE",
                        help="config overrides, as KEY VALUE pairs (must come last)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.people) or args.repeats < 1 or args.warmup < 0:
        parser.error("--people and --repeats must be >= 1 and --warmup >= 0")
    if args.images and not args.weights:
        parser.error("--images needs --weights CHECKPOINT (random weights decode no people)")
    for name in [args.weights] * bool(args.weights) + args.images:
        if not os.path.isfile(name):
            parser.error(f"file not found: {name}")
    args.device = args.device or default_devices()
    if "cuda" in args.device and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    return args


def main(argv=None) -> List[Dict[str, object]]:
    """Run the benchmark; return the records (also printed / written as JSON lines)."""
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    opts = list(args.opts) + (["MODEL.WEIGHTS", args.weights] if args.weights else [])
    cfg = setup_cfg(args.config_file, opts)
    model = build_eval_model(cfg)
    input_size = tuple(args.input_size)
    common = {
        "config": args.config_file,
        "config_name": os.path.splitext(os.path.basename(args.config_file))[0],
        "opts": list(args.opts),
        "input_size": list(input_size),
        "association": model.decoding.association,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "torch_version": torch.__version__,
        "detectron2_version": detectron2.__version__,
        "params": count_parameters(Network(model)),
        "params_model": count_parameters(model),
    }
    common.update(network_flops(model, input_size))

    records = []
    progress = tqdm(total=len(args.device) * (len(args.people) + len(args.images)) * (args.warmup + args.repeats),
                    desc="benchmark", unit="run", file=sys.stderr)
    for name in args.device:
        device = torch.device(name)
        model.to(device)
        for num_people in args.people:
            progress.set_postfix(device=name, people=num_people)
            record = dict(common, device=name, device_name=device_name(device), people=num_people)
            record.update(benchmark_run(model, cfg, device, num_people, input_size,
                                        args.repeats, args.warmup, args.seed, progress))
            records.append(record)
        for file_name in args.images:
            progress.set_postfix(device=name, image=os.path.basename(file_name))
            record = dict(common, device=name, device_name=device_name(device), people=None)
            record.update(model_run(model, cfg, device, file_name, input_size, args.repeats,
                                    args.warmup, progress))
            records.append(record)
    progress.close()
    model.to("cpu")

    if args.output:
        with open(args.output, "w") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
    print(f"{common['config_name']}  input {input_size[0]}x{input_size[1]}  "
          f"{common['gflops']:.2f} GFLOPs (1 multiply-add = 1 flop)  "
          f"{common['params'] / 1e6:.2f} M params (backbone + heads)  "
          f"torch {torch.__version__}  detectron2 {detectron2.__version__}  {common['threads']} threads")
    print(f"median ms over {args.repeats} runs ({args.warmup} warm-up); found = people decoded "
          f"(perfect: from perfect maps of a scene of 'people' people; model: from the network's "
          f"outputs on a real image); scipy_loop = a plain linear_sum_assignment loop on the "
          f"association problems of 'matching'")
    print(format_table(records))
    return records


if __name__ == "__main__":
    main()
