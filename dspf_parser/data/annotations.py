"""Turning a dataset dict's per-person annotations into image-level arrays.

The dataset dict schema shared by every reader of this project (MHPv2 layout, synthetic set,
DensePose-COCO, PASCAL-Person-Part)::

    {"file_name": str, "image_id": str, "height": int, "width": int,
     "annotations": [{"person_id": int,
                      # that person's part map, ONE of:
                      "parsing_file": str,                    # a part PNG of the image size
                      "parsing_rles": {part_id: RLE, ...},    # COCO RLEs of full-image masks
                      "keypoints": [x, y, v] * K, "bbox": [x0, y0, x1, y1]}, ...],
     # optional:
     "ignore_rles": [RLE, ...]}   # regions of people without part labels (see below)

Part PNGs hold part ids where the person is visible and 0 elsewhere. ``parsing_rles`` maps a part
id (``int``, or its decimal string after a JSON round trip) to the COCO RLE
(``{"size": [H, W], "counts": str | bytes}``, :mod:`pycocotools.mask`) of that part's binary mask
over the *whole image*; it is used by readers that have no PNG per person (DensePose-COCO,
PASCAL-Person-Part), so nothing is written to disk. Within one person, where two part masks
overlap the larger part id wins. People are painted in annotation order, so where two people
overlap the later person wins.

``ignore_rles`` (optional) marks pixels of people present in the image but without part labels
(e.g. DensePose-COCO persons without ``dp_masks``). :func:`load_human_annotations` returns them
as ``ignore_mask``; they are *not* written into ``part_map`` (which stays a valid label map of
ids ``< num_parts``): a consumer that wants to ignore them sets
``part_map[ignore_mask & (instance_map == 0)] = ignore_value`` itself.
"""
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
from PIL import Image

__all__ = ["HumanAnnotations", "load_human_annotations", "load_person_parts", "load_ignore_mask", "read_label_png"]


@dataclass
class HumanAnnotations:
    """Image-level ground truth of one image.

    Attributes:
        part_map: ``[H, W]`` uint8 part ids (0 background).
        instance_map: ``[H, W]`` uint8 person index ``p + 1`` of ``annotations[p]`` (0 background).
        keypoints: ``[P, K, 3]`` float32 (x, y, v) in pixel-index coordinates.
        ignore_mask: ``[H, W]`` bool, pixels of unlabelled people (``ignore_rles``); ``None``
            when the dict has no ``ignore_rles``.
    """

    part_map: np.ndarray
    instance_map: np.ndarray
    keypoints: np.ndarray
    ignore_mask: Optional[np.ndarray] = None


def read_label_png(path: str) -> np.ndarray:
    """A label PNG as ``[H, W]`` integers (the project's one reader of label PNGs, PIL).

    Palette PNGs give their indices, grey PNGs their values, colour PNGs (RGB, RGBA: alpha
    ignored) the R channel when G and B are zero (the LV-MHP-v2 part maps) or the common value
    when the three channels are equal.

    Raises:
        FileNotFoundError: missing or unreadable file (the message names it).
        ValueError: a colour PNG whose labels are in no single channel (names the file).
    """
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.array(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: part annotation missing or not a readable image") from None
    except Exception as e:  # PIL raises several types for corrupt files
        raise FileNotFoundError(f"{path}: part annotation missing or not a readable image ({e})") from e
    if arr.ndim == 3:
        if arr.shape[2] < 3:
            arr = arr[..., 0]  # LA: grey + alpha
        else:
            r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
            if not g.any() and not b.any():
                arr = r
            elif np.array_equal(r, g) and np.array_equal(r, b):
                arr = r
            else:
                raise ValueError(f"{path}: colour label PNG with labels in no single channel "
                                 f"(expected the id in R with G = B = 0, or three equal channels)")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return arr


def _decode_rle(rle: Dict, height: int, width: int, where: str) -> np.ndarray:
    from pycocotools import mask as mask_util

    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"{where}: not a COCO RLE dict with 'size' and 'counts': {type(rle).__name__}")
    size = [int(v) for v in rle["size"]]
    if size != [height, width]:
        raise ValueError(f"{where}: RLE of size {size[1]}x{size[0]} (WxH) but the image is {width}x{height}")
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        rle = mask_util.frPyObjects(rle, height, width)
    elif isinstance(counts, str):
        rle = {"size": size, "counts": counts.encode("ascii")}
    try:
        return mask_util.decode(rle).astype(bool)
    except Exception as e:
        raise ValueError(f"{where}: cannot decode RLE ({type(e).__name__}: {e})") from e


def load_person_parts(anno: Dict, height: int, width: int, num_parts: int,
                      image: Optional[str] = None, out_of_range: str = "error") -> np.ndarray:
    """One person's ``[H, W]`` uint8 part map from ``parsing_file`` (PNG) or ``parsing_rles``.

    Args:
        anno: a person annotation of the dict schema (module docstring).
        height, width: the image size; the part map must have it.
        num_parts: number of part classes including background; ids must be ``< num_parts``.
        image: the image's file name, used in error messages.
        out_of_range: what a PNG value ``>= num_parts`` (e.g. 255) does: ``"error"`` (raise) or
            ``"keep"`` (returned as it is, for evaluations that ignore such pixels as the
            official LV-MHP-v2 script does).

    Raises:
        FileNotFoundError: missing or unreadable PNG (the message names the file).
        ValueError: wrong size, part id out of range, bad RLE, or neither key present (the
            message names the PNG, or the image and person for RLEs).
    """
    who = f"{image or 'image'} person {anno.get('person_id', '?')}"
    if "parsing_file" in anno and anno["parsing_file"] is not None:
        path = anno["parsing_file"]
        parts = read_label_png(path)
        if parts.shape != (height, width):
            raise ValueError(f"{path}: part map is {parts.shape[1]}x{parts.shape[0]} but its image "
                             f"{image or ''} is {width}x{height}")
        if out_of_range not in ("error", "keep"):
            raise ValueError(f"out_of_range must be 'error' or 'keep', got {out_of_range!r}")
        if parts.size and int(parts.min()) < 0:
            raise ValueError(f"{path}: negative part id {int(parts.min())}")
        if parts.size and int(parts.max()) >= num_parts and out_of_range == "error":
            raise ValueError(f"{path}: part id {int(parts.max())} out of range (the schema has {num_parts} classes)")
        return parts.astype(np.uint8)
    if "parsing_rles" in anno and anno["parsing_rles"] is not None:
        parts = np.zeros((height, width), np.uint8)
        items = []
        for key, rle in anno["parsing_rles"].items():
            try:
                pid = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"{who}: parsing_rles key {key!r} is not a part id") from None
            if not 1 <= pid < num_parts:
                raise ValueError(f"{who}: part id {pid} out of range (the schema has {num_parts} classes)")
            items.append((pid, rle))
        for pid, rle in sorted(items, key=lambda t: t[0]):
            parts[_decode_rle(rle, height, width, f"{who} part {pid}")] = pid
        return parts
    raise ValueError(f"{who}: the annotation has neither 'parsing_file' nor 'parsing_rles'")


def load_ignore_mask(dataset_dict: Dict) -> Optional[np.ndarray]:
    """``[H, W]`` bool union of the dict's ``ignore_rles``, or ``None`` without that key."""
    rles = dataset_dict.get("ignore_rles")
    if rles is None:
        return None
    h, w = dataset_dict["height"], dataset_dict["width"]
    mask = np.zeros((h, w), bool)
    for i, rle in enumerate(rles):
        mask |= _decode_rle(rle, h, w, f"{dataset_dict['file_name']} ignore region {i}")
    return mask


def load_human_annotations(dataset_dict: Dict, num_parts: int, num_keypoints: int) -> HumanAnnotations:
    """Read every person's part map (:func:`load_person_parts`) and joints into image-level arrays.

    Raises:
        ValueError / FileNotFoundError naming the file or image: unreadable PNG, part map size
        different from the image's ``height``/``width``, part ids ``>= num_parts``, bad RLEs,
        keypoints of the wrong length, more than 255 people.
    """
    h, w = dataset_dict["height"], dataset_dict["width"]
    image = dataset_dict.get("file_name")
    annos = dataset_dict.get("annotations", [])
    if len(annos) > 255:
        raise ValueError(f"{image}: {len(annos)} people; at most 255 are supported")
    part_map = np.zeros((h, w), dtype=np.uint8)
    instance_map = np.zeros((h, w), dtype=np.uint8)
    keypoints = np.zeros((len(annos), num_keypoints, 3), dtype=np.float32)
    for p, anno in enumerate(annos):
        parts = load_person_parts(anno, h, w, num_parts, image=image)
        mask = parts > 0
        part_map[mask] = parts[mask]
        instance_map[mask] = p + 1
        kp = np.asarray(anno["keypoints"], dtype=np.float32)
        if kp.size != num_keypoints * 3:
            raise ValueError(f"{image}: person {p} has {kp.size} keypoint values, "
                             f"expected {num_keypoints} x 3")
        keypoints[p] = kp.reshape(num_keypoints, 3)
    return HumanAnnotations(part_map, instance_map, keypoints, load_ignore_mask(dataset_dict))
