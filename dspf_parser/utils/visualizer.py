"""Drawing of DSPFParser outputs with numpy and OpenCV (no matplotlib, BGR in and out).

Three entry points:

* :func:`draw_parsing` - the instance-aware overlay of one image: every person's parts blended
  over the image in the *part* palette, the person's outline (contours of ``pred_masks``), its
  skeleton (limbs between present joints, joints as dots) and its score, all three in that
  person's *person* colour so people stay distinguishable even when they wear the same parts;
* :func:`draw_part_map` - a category-level part map ``[H, W]`` coloured with the part palette;
* :func:`colorize_instances` - an instance-id map ``[H, W]`` (0 = background) coloured per person.

Palettes are deterministic (no random state): :func:`part_palette` is the PASCAL-VOC bit-
interleaving palette used by LIP/CIHP/MHP tools (background black), :func:`person_palette`
walks the hue circle by the golden ratio at full saturation. Every colour here is **BGR**
``uint8``, the OpenCV order, so the results can go straight to ``cv2.imwrite``.

Inputs may be torch tensors or numpy arrays; ``instances`` is a detectron2 ``Instances`` (or any
object with the same fields, see :func:`draw_parsing`).
"""
from __future__ import annotations

import colorsys
from typing import Any, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..data.categories import MHP_V2_SCHEMA
from .instances import people_arrays, to_numpy

__all__ = [
    "part_palette",
    "person_palette",
    "draw_parsing",
    "draw_part_map",
    "colorize_instances",
]

#: Colour of labels outside the palette (e.g. the ignore label 255) in :func:`draw_part_map`.
OUT_OF_RANGE_COLOR = (255, 255, 255)



def part_palette(num_classes: int = MHP_V2_SCHEMA.num_parts) -> np.ndarray:
    """The part palette, ``[num_classes, 3]`` ``uint8`` BGR; class 0 (background) is black.

    PASCAL-VOC construction: the bits of the class id are spread over the high bits of R, G, B,
    which gives well separated colours for the first few dozen ids.
    """
    palette = np.zeros((num_classes, 3), np.uint8)
    for c in range(num_classes):
        r = g = b = 0
        cid = c
        for shift in range(7, -1, -1):
            r |= ((cid >> 0) & 1) << shift
            g |= ((cid >> 1) & 1) << shift
            b |= ((cid >> 2) & 1) << shift
            cid >>= 3
        palette[c] = (b, g, r)
    return palette


def person_palette(num_people: int) -> np.ndarray:
    """``[num_people, 3]`` ``uint8`` BGR colours, saturated and bright, one per person index.

    Person ``i`` always gets the same colour (hue ``0.61803 * i`` mod 1, golden-ratio steps).
    """
    colors = np.zeros((max(num_people, 0), 3), np.uint8)
    for i in range(num_people):
        hue = (0.07 + 0.6180339887 * i) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
        colors[i] = (round(b * 255), round(g * 255), round(r * 255))
    return colors


def draw_part_map(part_map: Any, part_colors: Optional[np.ndarray] = None) -> np.ndarray:
    """Colour-code a category-level part map.

    Args:
        part_map: ``[H, W]`` integer part ids (numpy or torch).
        part_colors: ``[C, 3]`` BGR palette; default :func:`part_palette` (59 MHPv2 classes).

    Returns:
        ``[H, W, 3]`` ``uint8`` BGR; ids outside the palette (e.g. 255) are white.
    """
    labels = to_numpy(part_map)
    if labels.ndim != 2:
        raise ValueError(f"part_map must be [H, W], got shape {labels.shape}")
    colors = part_palette() if part_colors is None else np.asarray(part_colors, np.uint8)
    labels = labels.astype(np.int64)
    inside = (labels >= 0) & (labels < len(colors))
    out = np.empty(labels.shape + (3,), np.uint8)
    out[...] = OUT_OF_RANGE_COLOR
    out[inside] = colors[labels[inside]]
    return out


def colorize_instances(instance_map: Any, person_colors: Optional[np.ndarray] = None) -> np.ndarray:
    """Colour an instance-id map: id ``k >= 1`` gets person colour ``k - 1``, 0 stays black.

    Args:
        instance_map: ``[H, W]`` integer person ids (0 = background), numpy or torch.
        person_colors: ``[P, 3]`` BGR colours; default :func:`person_palette` as long as needed.

    Returns:
        ``[H, W, 3]`` ``uint8`` BGR.
    """
    ids = to_numpy(instance_map).astype(np.int64)
    if ids.ndim != 2:
        raise ValueError(f"instance_map must be [H, W], got shape {ids.shape}")
    if (ids < 0).any():
        raise ValueError("instance_map holds negative ids")
    num = int(ids.max()) if ids.size else 0
    colors = person_palette(num) if person_colors is None else np.asarray(person_colors, np.uint8)
    if len(colors) < num:
        raise ValueError(f"{len(colors)} person colours for instance ids up to {num}")
    table = np.concatenate([np.zeros((1, 3), np.uint8), colors[:num]], 0)
    return table[ids]




def _scale(height: int, width: int) -> Tuple[int, int, float]:
    """Line thickness, joint radius and font scale for an image of this size."""
    side = min(height, width)
    thickness = max(1, int(round(side / 240)))
    radius = max(2, int(round(side / 110)))
    font = max(0.3, side / 900)
    return thickness, radius, font


def _point(xy: Sequence[float]) -> Tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def draw_parsing(
    image_bgr: np.ndarray,
    instances: Any,
    part_colors: Optional[np.ndarray] = None,
    confidence_threshold: float = 0.0,
    limbs: Sequence[Tuple[int, int]] = MHP_V2_SCHEMA.limbs,
    alpha: float = 0.5,
) -> np.ndarray:
    """Draw instance-aware part parsing results over an image.

    For each person with ``score >= confidence_threshold`` (lowest score first, so the best
    people end on top):

    1. the pixels of ``pred_parts > 0`` are blended with the part colour
       (``(1 - alpha) * image + alpha * colour``); mask pixels without a part id (only possible
       when ``pred_parts`` is missing or disagrees with ``pred_masks``) get the person colour;
    2. the outline of ``pred_masks`` (external contours) is drawn in the person colour;
    3. limbs between two present joints (score > 0) are drawn as lines in the person colour,
       and present joints as dots in the person colour with a dark rim;
    4. the score is written at the top-left corner of ``pred_boxes`` (inside the image) on a
       label of the person colour.

    The person colour of the ``i``-th person of ``instances`` (index order, not score order) is
    ``person_palette(len(instances))[i]``, so it is stable under thresholding.

    Args:
        image_bgr: ``[H, W, 3]`` ``uint8`` BGR image.
        instances: detectron2 ``Instances`` of size ``(H, W)`` with ``scores`` ``[P]`` and any of
            ``pred_parts`` ``[P, H, W]`` (part ids), ``pred_masks`` ``[P, H, W]`` (bool),
            ``pred_keypoints`` ``[P, K, 3]`` (x, y, score; score 0 = missing joint) and
            ``pred_boxes`` (XYXY); missing fields are simply not drawn. Torch or numpy.
        part_colors: ``[C, 3]`` BGR part palette; default :func:`part_palette`.
        confidence_threshold: people scoring below it are not drawn.
        limbs: pairs of 0-based joint indices (default: the MHPv2 limbs).
        alpha: opacity of the part colours, in ``[0, 1]``.

    Returns:
        A new ``[H, W, 3]`` ``uint8`` BGR image (the input is not modified).
    """
    image = np.asarray(image_bgr)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image_bgr must be [H, W, 3] uint8, got {image.shape} {image.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    height, width = image.shape[:2]
    colors = part_palette() if part_colors is None else np.asarray(part_colors, np.uint8)
    people_fields = people_arrays(instances)
    num, scores = people_fields.num, people_fields.scores
    parts, masks, keypoints, boxes = (people_fields.parts, people_fields.masks, people_fields.keypoints,
                                      people_fields.boxes)
    for name, arr in (("pred_parts", parts), ("pred_masks", masks)):
        if arr is not None and arr.shape[1:] != (height, width):
            raise ValueError(f"{name} has shape {arr.shape}, expected [P, {height}, {width}]")
    people = person_palette(num)
    thickness, radius, font_scale = _scale(height, width)

    out = image.copy()
    order = [i for i in np.argsort(scores, kind="stable") if scores[i] >= confidence_threshold]
    # 1. part colours (blended once against the original image, top person wins overlaps).
    fill = np.zeros((height, width, 3), np.uint8)
    painted = np.zeros((height, width), bool)
    for i in order:
        person_color = people[i]
        part_ids = parts[i].astype(np.int64) if parts is not None else None
        mask = masks[i].astype(bool) if masks is not None else None
        if part_ids is not None:
            has_part = part_ids > 0
            valid = has_part & (part_ids < len(colors))
            fill[valid] = colors[part_ids[valid]]
            fill[has_part & ~valid] = OUT_OF_RANGE_COLOR
            painted |= has_part
        if mask is not None:
            bare = mask if part_ids is None else mask & ~(part_ids > 0)
            fill[bare] = person_color
            painted |= bare
    if painted.any():
        blended = (1.0 - alpha) * image[painted].astype(np.float32) + alpha * fill[painted].astype(np.float32)
        out[painted] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    # 2-4. outlines, skeletons, scores, person by person.
    for i in order:
        color = tuple(int(c) for c in people[i])
        region = None
        if masks is not None:
            region = masks[i].astype(bool)
        elif parts is not None:
            region = parts[i] > 0
        if region is not None and region.any():
            contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, color, thickness, cv2.LINE_8)
        if keypoints is not None and len(keypoints[i]):
            joints = keypoints[i]
            present = joints[:, 2] > 0
            for a, b in limbs:
                if a < len(joints) and b < len(joints) and present[a] and present[b]:
                    cv2.line(out, _point(joints[a]), _point(joints[b]), color, thickness + 1, cv2.LINE_AA)
            for j in np.nonzero(present)[0]:
                cv2.circle(out, _point(joints[j]), radius, (32, 32, 32), -1, cv2.LINE_AA)
                cv2.circle(out, _point(joints[j]), max(1, radius - 1), color, -1, cv2.LINE_AA)
        if boxes is not None:
            _draw_score(out, boxes[i], float(scores[i]), color, font_scale)
    return out


def _draw_score(image: np.ndarray, box: np.ndarray, score: float, color: Tuple[int, int, int], scale: float) -> None:
    """Write ``score`` on a filled label at the box's top-left corner, kept inside the image."""
    height, width = image.shape[:2]
    text = f"{score:.2f}"
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x0 = int(np.clip(round(float(box[0])), 0, max(0, width - tw - 2)))
    y0 = int(round(float(box[1])))
    top = y0 - th - base - 2  # label above the box when there is room, else inside it
    if top < 0:
        top = int(np.clip(y0, 0, max(0, height - th - base - 2)))
    cv2.rectangle(image, (x0, top), (x0 + tw + 2, top + th + base + 2), color, -1)
    text_color = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(image, text, (x0 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, text_color, 1, cv2.LINE_AA)
