"""Turning a dataset dict's per-person annotations into image-level arrays.

The dataset dict schema shared by every reader of this project (MHPv2 layout, synthetic set)::

    {"file_name": str, "image_id": str, "height": int, "width": int,
     "annotations": [{"person_id": int, "parsing_file": str,      # that person's part PNG
                      "keypoints": [x, y, v] * K, "bbox": [x0, y0, x1, y1]}, ...]}

Part PNGs hold part ids where the person is visible and 0 elsewhere; people are painted in
annotation order, so where two masks overlap the later person wins.
"""
from dataclasses import dataclass
from typing import Dict

import cv2
import numpy as np

__all__ = ["HumanAnnotations", "load_human_annotations"]


@dataclass
class HumanAnnotations:
    """Image-level ground truth of one image.

    Attributes:
        part_map: ``[H, W]`` uint8 part ids (0 background).
        instance_map: ``[H, W]`` uint8 person index ``p + 1`` of ``annotations[p]`` (0 background).
        keypoints: ``[P, K, 3]`` float32 (x, y, v) in pixel-index coordinates.
    """

    part_map: np.ndarray
    instance_map: np.ndarray
    keypoints: np.ndarray


def load_human_annotations(dataset_dict: Dict, num_parts: int, num_keypoints: int) -> HumanAnnotations:
    """Read every person's part PNG and joints of ``dataset_dict`` into image-level arrays.

    Raises:
        ValueError / FileNotFoundError naming the file: unreadable PNG, PNG size different from
        the image's ``height``/``width``, part ids ``>= num_parts``, keypoints of the wrong length,
        more than 255 people.
    """
    h, w = dataset_dict["height"], dataset_dict["width"]
    annos = dataset_dict.get("annotations", [])
    if len(annos) > 255:
        raise ValueError(f"{dataset_dict['file_name']}: {len(annos)} people; at most 255 are supported")
    part_map = np.zeros((h, w), dtype=np.uint8)
    instance_map = np.zeros((h, w), dtype=np.uint8)
    keypoints = np.zeros((len(annos), num_keypoints, 3), dtype=np.float32)
    for p, anno in enumerate(annos):
        path = anno["parsing_file"]
        parts = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if parts is None:
            raise FileNotFoundError(f"{path}: part annotation missing or not a readable image")
        if parts.ndim == 3:
            parts = parts[..., 0]
        if parts.shape != (h, w):
            raise ValueError(f"{path}: part map is {parts.shape[1]}x{parts.shape[0]} but its image "
                             f"{dataset_dict['file_name']} is {w}x{h}")
        if parts.max() >= num_parts:
            raise ValueError(f"{path}: part id {int(parts.max())} out of range (the schema has {num_parts} classes)")
        mask = parts > 0
        part_map[mask] = parts[mask]
        instance_map[mask] = p + 1
        kp = np.asarray(anno["keypoints"], dtype=np.float32)
        if kp.size != num_keypoints * 3:
            raise ValueError(f"{dataset_dict['file_name']}: person {p} has {kp.size} keypoint values, "
                             f"expected {num_keypoints} x 3")
        keypoints[p] = kp.reshape(num_keypoints, 3)
    return HumanAnnotations(part_map, instance_map, keypoints)
