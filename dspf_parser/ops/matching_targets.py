"""Matching problems for the matching loss (training stage two).

Pure torch + scipy (no detectron2). Two kinds of problems, chosen by
``MODEL.DSPF.MATCHING.LOSS_PROBLEMS``:

* :func:`ground_truth_limb_problems` (``"ground_truth"``): the candidates of each joint type are
  the annotated joints of the image's people, so candidate ``p`` of every type belongs to person
  ``p`` and the true pairing of every limb is the identity restricted to people with both
  endpoints labelled. The scores come from the *predicted* limb heatmaps (:func:`score_limbs`),
  so a grouping error back-propagates into the limb heatmaps only.
* :func:`detected_limb_problems` (``"detected"``): the candidates are the ones inference detects
  (:func:`~dspf_parser.ops.decoding.find_candidates` on the predicted maps, with autograd on),
  scored and filtered as :func:`~dspf_parser.ops.decoding.decode_maps` does; each candidate is
  labelled with the annotated person it detects (:func:`candidate_owners`). The candidate
  coordinates are differentiable w.r.t. the keypoint heatmaps and offsets (Hough voting and
  the 3x3 vote centroid of its peaks) and the DSPF (the projected points), so a grouping error
  also trains keypoint detection.

Both return problems batched image-major, ``[N * L, P, P]``, for one call of the matching layer.
"""
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .decoding import DecodingSettings, ParsingMaps, find_candidates
from .limb_scoring import score_limbs

__all__ = ["MATCHING_PROBLEMS", "candidate_owners", "detected_limb_problems", "ground_truth_limb_problems"]

#: The values of ``MODEL.DSPF.MATCHING.LOSS_PROBLEMS``.
MATCHING_PROBLEMS = ("ground_truth", "detected")


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


def candidate_owners(coords: Tensor, valid: Tensor, keypoints: Tensor, match_radius: float) -> Tensor:
    """The annotated person each keypoint candidate of one image detects, or -1.

    Per joint type ``k``, a one-to-one assignment between the valid candidates of type ``k`` and
    the labelled (``v > 0``) joints of type ``k`` minimises the total distance among the
    assignments with the most pairs within ``match_radius`` (scipy's ``linear_sum_assignment``,
    pairs farther than ``match_radius`` costing more than any within it); a candidate's owner
    is the person of its joint if that pair lies within ``match_radius`` (inclusive), else -1
    (a false positive, or a duplicate of a joint another candidate took). Padded candidates get
    -1. Not differentiable (labels only); one host copy of the distances.

    Args:
        coords: ``[K, N, 2]`` candidate ``(x, y)`` in input pixels.
        valid: ``[K, N]`` bool, real candidates.
        keypoints: ``[P, K, 3]`` annotated ``(x, y, v)`` in input pixels.
        match_radius: largest candidate-to-joint distance of a match, input pixels.

    Returns:
        ``owners`` ``[K, N]`` long on the device of ``coords``: person index in ``[0, P)`` or -1.
    """
    num_types, num_cand = valid.shape
    owners = np.full((num_types, num_cand), -1, dtype=np.int64)
    if num_cand and len(keypoints):
        kp = keypoints.detach().to(device="cpu", dtype=torch.float64)
        dist = torch.cdist(coords.detach().to(device="cpu", dtype=torch.float64), kp[:, :, :2].transpose(0, 1))
        close = valid.cpu()[:, :, None] & (kp[:, :, 2] > 0).t()[:, None, :] & (dist <= match_radius)
        dist, close = dist.numpy(), close.numpy()  # [K, N, P]
        far_cost = match_radius * (min(dist.shape[1:]) + 1) + 1.0  # above any within-radius matching
        for k in np.flatnonzero(close.any(axis=(1, 2))):
            rows, cols = linear_sum_assignment(np.where(close[k], dist[k], far_cost))
            kept = close[k, rows, cols]
            owners[k, rows[kept]] = cols[kept]
    return torch.from_numpy(owners).to(coords.device)


def detected_limb_problems(
    maps: Sequence[ParsingMaps], keypoints: List[Tensor], settings: DecodingSettings, match_radius: float
) -> Tuple[Tensor, Tensor, Tensor]:
    """Batched limb matching problems over the keypoint candidates inference detects.

    Per image ``i``: the candidates ``coords`` ``[K, N_i, 2]`` of
    :func:`~dspf_parser.ops.decoding.find_candidates` (Hough peaks and, if enabled, DSPF
    points), computed with autograd on; the limb scores ``[L, N_i, N_i]`` of
    :func:`score_limbs` with ``template_sigma = settings.limb_template_sigma`` and the valid
    pairs ``pair_valid & (scores > settings.min_limb_score)``, as
    :func:`~dspf_parser.ops.decoding.decode_maps` computes them (all pairs scored: the midpoint
    pruning ``settings.limb_prune_below`` of inference is not applied). Gradient reaches the
    limb heatmaps through the samples, and the keypoint heatmaps and offsets (Hough peaks) and
    the DSPF (projected points) through the candidate coordinates (none through the part
    probabilities, which only select the person cells, nor through the candidate scores, which
    the limb scores do not read).

    Target: each candidate is labelled by :func:`candidate_owners`; ``target[l, n, m] = 1`` iff
    candidate ``n`` of type ``limbs[l][0]`` and candidate ``m`` of type ``limbs[l][1]`` have the
    same owner ``p >= 0`` (then both joints of person ``p``'s limb are labelled). Every valid
    pair counts in the loss, false positives included (their rows and columns have target 0).
    A true pair that is not valid (limb score not above ``min_limb_score``) keeps target 1 but
    is masked out by ``valid``.

    Args:
        maps: ``N >= 1`` per-image maps (probabilities, cropped to each image's grid), e.g.
            ``maps_of_batch`` of the training forward.
        keypoints: ``N`` tensors ``[P_i, K, 3]`` (x, y, v) in input pixels; ``v > 0`` = labelled.
        settings: the decoding settings (``limbs``, ``stride``, candidate detection, limb
            scoring; ``association`` and ``solver`` are not used).
        match_radius: largest candidate-to-joint distance (input pixels) of a match.

    Returns:
        ``scores`` ``[N * L, P, P]`` (``P = max N_i``, at least 1; padding 0), ``valid``
        ``[N * L, P, P]`` bool and ``target`` ``[N * L, P, P]`` float (in the dtype of
        ``scores``), image-major (row ``i * L + l`` is limb ``l`` of image ``i``).
    """
    problems = []
    for m, kp in zip(maps, keypoints):
        coords, _, valid = find_candidates(m, settings)
        scores, pair_valid = score_limbs(m.limb_heatmaps, coords, valid, settings.limbs, settings.stride,
                                         template_sigma=settings.limb_template_sigma)
        pair_valid = pair_valid & (scores > settings.min_limb_score)
        owners = candidate_owners(coords, valid, kp, match_radius)  # [K, N_i]
        ends = torch.as_tensor(list(settings.limbs), dtype=torch.long, device=owners.device).reshape(-1, 2)
        start, end = owners[ends[:, 0]], owners[ends[:, 1]]  # [L, N_i] each
        target = (start[:, :, None] == end[:, None, :]) & (start[:, :, None] >= 0)
        problems.append((scores, pair_valid, target.to(scores.dtype)))
    size = max([1] + [s.shape[-1] for s, _, _ in problems])

    def stack(index: int) -> Tensor:
        return torch.cat([F.pad(p[index], (0, size - p[index].shape[-1], 0, size - p[index].shape[-2]))
                          for p in problems])

    return stack(0), stack(1), stack(2)
