"""The oracle evaluation: exact maps through the model's own decoding seam score near the top."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import oracle_eval  # noqa: E402

from dspf_parser.evaluation.oracle import association_errors  # noqa: E402


def test_oracle_on_a_few_synthetic_images_is_near_perfect_and_degrades(tmp_path, capsys):
    out = tmp_path / "oracle.jsonl"
    rows = oracle_eval.main([
        "--config-file", "configs/synthetic/dspf_R18_tiny.yaml", "--dataset", "synthetic_humans_val",
        "--association", "exact", "greedy_openpose", "--degrade", "0", "2", "--limit", "4",
        "--output", str(out),
    ])
    printed = capsys.readouterr().out
    assert len(rows) == 4 and len(out.read_text().splitlines()) == 4
    exact = next(r for r in rows if r["association"] == "exact" and r["degrade"] == 0)
    # The first 4 validation images (7 people) decode without an error from their exact maps.
    assert exact["AP_p_50"] >= 90 and exact["pose_AP"] >= 90
    assert exact["missed"] == 0 and exact["cross"] == 0 and exact["persons_per_gt"] == 1.0
    assert "oracle synthetic_humans_val exact AP_p_50=" in printed
    assert "oracle synthetic_humans_val exact " in printed and "[degrade=2]" in printed
    damaged = next(r for r in rows if r["association"] == "exact" and r["degrade"] == 2)
    assert damaged["pose_AP"] < exact["pose_AP"]


def test_association_errors_hand_case():
    limbs = [(0, 1), (1, 2)]
    gt = torch.tensor([[[0.0, 0, 2], [0, 10, 2], [0, 20, 2]], [[50, 0, 2], [50, 10, 2], [50, 20, 1]]])
    # Person 0 decoded right; person 1's hip (joint 2) given to person 0's limb instead.
    decoded = torch.tensor([[[0.0, 0, 1], [0, 10, 1], [50, 20, 1]], [[50, 0, 1], [50, 10, 1], [0, 0, 0]]])
    true_pairs, missed, cross = association_errors(decoded, gt, limbs)
    # gt 0: (0,1) found together; (1,2) not a true pair (its joint 2 was never found).
    # gt 1: (0,1) together; (1,2) split between the two decoded people: missed. Decoded 0 holds
    # the limb (1,2) across gt 0 and gt 1: one cross pair.
    assert (true_pairs, missed, cross) == (3, 1, 1)


def test_show_lists_the_lost_people_and_draws_their_images(tmp_path, capsys):
    """``--show``: on the first 8 validation images' exact maps only image 000008's partly
    hidden person 0 (93 px) is lost; its best IoU is the mean over the part classes (background
    included) of either map, recomputed here by a plain loop, and only that image is drawn."""
    import numpy as np
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from dspf_parser.data.annotations import load_person_parts
    from dspf_parser.data.categories import get_schema

    oracle_eval.main(["--config-file", "configs/synthetic/dspf_R18_tiny.yaml", "--dataset", "synthetic_humans_val",
                      "--association", "exact", "--limit", "8", "--show", str(tmp_path)])
    folder = tmp_path / "synthetic_humans_val" / "exact_degrade0"
    lines = (folder / "lost.txt").read_text().splitlines()
    assert "0 lost annotated people" not in capsys.readouterr().out
    assert len(lines) == 1 and lines[0].startswith("000008 lost annotated person 0: 93 px, 5 labelled joints")
    assert sorted(p.name for p in folder.glob("*.png")) == ["000008.png"]

    # The reported IoU against a loop over the decoded people of the image's own decoding.
    record = DatasetCatalog.get("synthetic_humans_val")[7]
    classes = get_schema(MetadataCatalog.get("synthetic_humans_val").schema).num_parts
    cfg = oracle_eval.setup_cfg(oracle_eval.parse_args(["--config-file", "configs/synthetic/dspf_R18_tiny.yaml"]))
    mapper = oracle_eval.DSPFDatasetMapper(cfg, is_train=True, augmentations=[])
    sample = mapper(record)
    size = tuple(sample["image"].shape[-2:])
    people = oracle_eval.decode_maps(oracle_eval.oracle_maps(sample, classes, 255), size, size,
                                     oracle_eval.decoding_settings_from_cfg(cfg, association="exact"))
    gt = load_person_parts(record["annotations"][0], *size, classes, image=record["file_name"], out_of_range="keep")
    best = 0.0
    for person in range(1, len(people.scores) + 1):
        pred = np.where(people.instance_map.numpy() == person, people.part_labels.numpy(), 0)
        ious = [((gt == c) & (pred == c)).sum() / ((gt == c) | (pred == c)).sum()
                for c in range(classes) if ((gt == c) | (pred == c)).any()]
        best = max(best, float(np.mean(ious)))
    assert lines[0].endswith(f"best decoded IoU {best:.3f}")
