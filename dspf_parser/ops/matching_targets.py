"""Ground-truth matching problems for the matching loss (training stage two).

Pure torch (no detectron2). The candidates of each joint type are the annotated joints of the
image's people, so candidate ``p`` of every type belongs to person ``p`` and the true pairing of
every limb is the identity restricted to people with both endpoints labelled. The scores come
from the *predicted* limb heatmaps (:func:`score_limbs`, differentiable w.r.t. them), so a
grouping error of the solver back-propagates into the limb heatmaps.
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from .limb_scoring import score_limbs

__all__ = ["ground_truth_limb_problems"]


def ground_truth_limb_problems(
    limb_heatmaps: Tensor, keypoints: List[Tensor], limbs: Sequence[Tuple[int, int]], stride: int
) -> Tuple[Tensor, Tensor, Tensor]:
    """Batched limb matching problems over the annotated joints of every image.

    Args:
        limb_heatmaps: ``[N, L, h, w]`` predicted limb probabilities.
        keypoints: ``N`` tensors ``[P_i, K, 3]`` (x, y, v) in input pixels; ``v > 0`` = labelled.
        limbs: ``L`` joint-type pairs.
        stride: output stride of the heatmaps.

    Returns:
        ``scores`` ``[N * L, P, P]`` (``P = max P_i``, at least 1), ``valid`` ``[N * L, P, P]``
        bool (both candidates labelled) and ``target`` ``[N * L, P, P]`` float (1 on the true
        pairs), image-major.
    """
    n, num_limbs = limb_heatmaps.shape[:2]
    p_max = max([1] + [len(k) for k in keypoints])
    scores = limb_heatmaps.new_zeros((n, num_limbs, p_max, p_max))
    valid = torch.zeros((n, num_limbs, p_max, p_max), dtype=torch.bool, device=limb_heatmaps.device)
    eye = torch.eye(p_max, dtype=torch.bool, device=limb_heatmaps.device)
    for i, kp in enumerate(keypoints):
        if len(kp) == 0 or num_limbs == 0:
            continue
        kp = kp.to(limb_heatmaps.device)
        coords = kp[:, :, :2].transpose(0, 1)  # [K, P, 2]
        labelled = (kp[:, :, 2] > 0).transpose(0, 1)  # [K, P]
        s, v = score_limbs(limb_heatmaps[i], coords, labelled, limbs, stride)
        scores[i, :, : len(kp), : len(kp)] = s
        valid[i, :, : len(kp), : len(kp)] = v
    target = (valid & eye).to(scores.dtype)
    shape = (n * num_limbs, p_max, p_max)
    return scores.reshape(shape), valid.reshape(shape), target.reshape(shape)
