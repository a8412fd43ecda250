"""Weak small part regions of a decoded person take the person's other classes (not in the paper).

The instance-level metrics (AP^p, PCP) average the part IoU over the classes present in the
prediction *or* the ground truth, so a few stray pixels of a class the person does not have
(a neighbour's glove, a speck of the mirror shoe) cost that person a whole class at IoU 0. A
region of one class inside one person is relabelled when it is both

* small: fewer pixels than ``min_fraction`` of the person's part pixels, and
* weak: the mean, over its pixels, of the part map's top probability is below
  ``max_confidence``;

its pixels then take, one by one, the most probable of the person's remaining classes. The
person's pixels stay its own (the mask does not change), and a confident small part (a hand the
network is sure of) stays, so exact maps (one-hot part probabilities) are never changed.

Pure tensor code, no detectron2.
"""
from typing import Callable

import torch
from torch import Tensor

__all__ = ["absorb_weak_parts"]


def absorb_weak_parts(labels: Tensor, owners: Tensor, probs_at: Callable[[Tensor], Tensor], num_classes: int,
                      min_fraction: float, max_confidence: float) -> Tensor:
    """Relabel each person's small, weak part regions with the person's other classes.

    Args:
        labels: ``[N]`` long part labels (``1..C-1``) of the person pixels.
        owners: ``[N]`` long person of each pixel, ``1..P`` (0: no person; left as it is).
        probs_at: given indices ``[n]`` into the ``N`` pixels, their part probabilities
            ``[C, n]`` (those the labels were the argmax of).
        num_classes: ``C``, background included.
        min_fraction: a region is small below this share of its person's pixels (0: off).
        max_confidence: a small region is weak when the mean top probability of its pixels is
            below this.

    Returns:
        ``[N]`` labels (a new tensor; equal to ``labels`` where nothing was weak). A person whose
        every class is weak keeps its labels.
    """
    if labels.shape != owners.shape or labels.dim() != 1:
        raise ValueError(f"labels and owners must be [N] alike, got {tuple(labels.shape)} and {tuple(owners.shape)}")
    out = labels.clone()
    if min_fraction <= 0 or labels.numel() == 0:
        return out
    c = num_classes
    people = int(owners.max()) + 1
    key = owners * c + labels  # (person, class) region of every pixel
    counts = torch.bincount(key, minlength=people * c).view(people, c)
    area = counts[:, 1:].sum(dim=1, keepdim=True)
    small = (counts > 0) & (counts < min_fraction * area)
    small[0] = False  # pixels of no person
    small[:, 0] = False
    inside = small.view(-1).index_select(0, key).nonzero().squeeze(1)  # pixels of small regions
    if inside.numel() == 0:
        return out
    probs = probs_at(inside)  # [C, n]
    top = probs.amax(dim=0)
    key_inside = key.index_select(0, inside)
    total = torch.zeros(people * c, dtype=top.dtype, device=top.device).index_add_(0, key_inside, top)
    weak = small & (total.view(people, c) < max_confidence * counts.to(top.dtype))
    kept = (counts > 0) & ~weak
    kept[:, 0] = False
    owner = owners.index_select(0, inside)
    moved = weak.view(-1).index_select(0, key_inside) & kept.any(dim=1).index_select(0, owner)
    if not bool(moved.any()):
        return out
    allowed = kept[owner[moved]].t()  # [C, m]
    choice = torch.where(allowed, probs[:, moved], torch.full_like(probs[:, moved], -1.0)).argmax(dim=0)
    out[inside[moved]] = choice
    return out
