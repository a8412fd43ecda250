"""Weak small part regions of decoded people (dspf_parser.ops.part_cleanup) against a per-person
loop, a hand-made case, the category-level map that follows the labels, and exact maps left
as they are."""
import os
import sys

import pytest
import torch

from dspf_parser.ops.decoding import agree_with_labels
from dspf_parser.ops.part_cleanup import absorb_weak_parts

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))


def loop_reference(labels, owners, probs, num_classes, min_fraction, max_confidence):
    """One person, one class at a time, in plain Python."""
    out = labels.tolist()
    for person in set(owners.tolist()) - {0}:
        mine = [i for i in range(len(labels)) if owners[i] == person]
        classes = {int(labels[i]) for i in mine}
        weak = set()
        for c in classes:
            region = [i for i in mine if labels[i] == c]
            top = sum(float(probs[:, i].max()) for i in region) / len(region)
            if len(region) < min_fraction * len(mine) and top < max_confidence:
                weak.add(c)
        kept = classes - weak
        if not kept:
            continue
        for i in mine:
            if int(labels[i]) in weak:
                out[i] = max(sorted(kept), key=lambda k: (float(probs[k, i]), -k))
    return out


def test_a_speck_of_another_class_takes_the_persons_best_remaining_class():
    # Person 1: 20 arm pixels and 1 weak glove pixel; person 2: 1 confident shoe pixel among 20.
    c = 5
    labels = torch.tensor([1] * 20 + [2] + [3] * 20 + [4] + [2])
    owners = torch.tensor([1] * 21 + [2] * 21 + [0])
    probs = torch.full((c, labels.numel()), 0.05)
    probs[labels, torch.arange(labels.numel())] = 0.8
    probs[:, 20] = torch.tensor([0.1, 0.3, 0.35, 0.05, 0.2])  # weak glove; arm is its best kept class
    probs[:, 41] = torch.tensor([0.0, 0.0, 0.0, 0.05, 0.95])  # a confident shoe stays
    probs[:, 42] = torch.tensor([0.1, 0.3, 0.35, 0.05, 0.2])  # no person: untouched
    got = absorb_weak_parts(labels, owners, lambda i: probs[:, i], c, min_fraction=0.1, max_confidence=0.8)
    assert got[20] == 1 and got[41] == 4 and got[42] == 2
    assert torch.equal(got[:20], labels[:20]) and torch.equal(got[21:41], labels[21:41])
    # off, or every class weak: unchanged
    assert torch.equal(absorb_weak_parts(labels, owners, lambda i: probs[:, i], c, 0.0, 0.8), labels)
    alone = absorb_weak_parts(labels[20:21], owners[20:21], lambda i: probs[:, 20:21][:, i], c, 2.0, 0.8)
    assert alone.tolist() == [2]


@pytest.mark.parametrize("seed", range(6))
def test_absorb_weak_parts_matches_the_loop(seed):
    g = torch.Generator().manual_seed(seed)
    c, n = 7, 300
    owners = torch.randint(0, 5, (n,), generator=g)
    labels = torch.randint(1, c, (n,), generator=g)
    big = torch.randint(1, c, (5,), generator=g)  # each person mostly one class
    mostly = torch.rand(n, generator=g) < 0.7
    labels = torch.where(mostly, big[owners], labels)
    probs = torch.rand(c, n, generator=g) ** 3
    probs = probs / probs.sum(0)
    probs[labels, torch.arange(n)] += 0.5 * torch.rand(n, generator=g)
    probs = probs / probs.sum(0)
    calls = []

    def probs_at(index):
        calls.append(index.numel())
        return probs[:, index]

    for frac, conf in ((0.1, 0.6), (0.3, 0.9), (0.05, 1.1)):
        got = absorb_weak_parts(labels, owners, probs_at, c, frac, conf)
        assert got.tolist() == loop_reference(labels, owners, probs, c, frac, conf)
    assert max(calls) < n  # only the pixels of small regions are read


def test_agree_with_labels_exchanges_the_argmax_and_the_label_only():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(6, 5, 7, generator=g).softmax(dim=0)
    labels = probs.argmax(dim=0)
    labels[0, 0] = (labels[0, 0] + 1) % 6
    labels[2, 3] = (labels[2, 3] + 2) % 6
    out = agree_with_labels(probs, labels)
    assert torch.equal(out.argmax(dim=0), labels)
    assert torch.allclose(out.sum(dim=0), torch.ones(5, 7))
    for r, col in ((0, 0), (2, 3)):
        top, lab = int(probs[:, r, col].argmax()), int(labels[r, col])
        assert out[top, r, col] == probs[lab, r, col] and out[lab, r, col] == probs[top, r, col]
    changed = torch.zeros(5, 7, dtype=torch.bool)
    changed[0, 0] = changed[2, 3] = True
    assert torch.equal(out[:, ~changed], probs[:, ~changed])
    assert agree_with_labels(probs, probs.argmax(dim=0)) is probs


def test_exact_maps_decode_the_same_with_the_cleanup():
    """The oracle (one-hot part maps) gives the same figures with and without the cleanup."""
    import oracle_eval

    def run(fraction):
        args = ["--config-file", "configs/synthetic/dspf_R18_tiny.yaml", "--dataset", "synthetic_humans_val",
                "--association", "exact", "--degrade", "0", "1", "--limit", "8",
                "--opts", "MODEL.DSPF.INFERENCE.SMALL_PART_FRACTION", str(fraction)]
        return {r["degrade"]: r for r in oracle_eval.main(args)}

    off, on = run(0.0), run(0.5)
    keys = ("AP_p_50", "AP_p_vol", "PCP_50", "AP_r_vol", "pose_AP")
    for level in (0, 1):
        assert {k: on[level][k] for k in keys} == pytest.approx({k: off[level][k] for k in keys})
