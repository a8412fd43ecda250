"""Fuzz tests (hypothesis): the MHPv2-layout reader on corrupted files, the matching layer on
hostile scores. Either a clear error naming the file, or defined, feasible output."""
import glob
import os
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspf_parser.data.mhp_v2_layout import load_mhp_v2_split
from dspf_parser.data.synthetic_cache import write_synthetic_split
from dspf_parser.ops.matching import round_matching, solve_matching


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fuzz_mhp"))
    write_synthetic_split(root, "train", num_images=3, seed=5, image_size=(48, 48), max_people=2, progress=False)
    return root


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["mat", "list", "png_name"]),
    which=st.integers(0, 10),
    cut=st.floats(0.0, 1.0),
    junk=st.binary(min_size=0, max_size=64),
)
def test_reader_on_corrupted_files_names_the_file(pristine, tmp_path_factory, kind, which, cut, junk):
    root = str(tmp_path_factory.mktemp("case"))
    shutil.rmtree(root)
    shutil.copytree(pristine, root)
    if kind == "mat":
        files = sorted(glob.glob(os.path.join(root, "train", "pose_annos", "*.mat")))
        victim = files[which % len(files)]
        data = open(victim, "rb").read()
        open(victim, "wb").write(data[: int(len(data) * cut)] + junk)
    elif kind == "list":
        victim = os.path.join(root, "list", "train.txt")
        open(victim, "wb").write(junk)
    else:
        files = sorted(glob.glob(os.path.join(root, "train", "parsing_annos", "*.png")))
        victim = files[which % len(files)]
        os.rename(victim, victim.replace(".png", f"_x{len(junk)}.png"))
    try:
        records = load_mhp_v2_split(root, "train")
    except (ValueError, FileNotFoundError, OSError) as e:
        assert root in str(e), f"the error does not name a file of the dataset: {e}"
        return
    # Accepted input must still be well-formed records.
    for r in records:
        assert os.path.isfile(r["file_name"]) and r["height"] > 0 and r["width"] > 0
        for a in r["annotations"]:
            assert len(a["keypoints"]) == 48 and os.path.isfile(a["parsing_file"])


special = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 0.0])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    b=st.integers(1, 3), n=st.integers(0, 7), m=st.integers(0, 7), seed=st.integers(0, 2**16),
    n_special=st.integers(0, 6), value=special, with_valid=st.booleans(),
)
def test_matching_on_hostile_scores_is_feasible(b, n, m, seed, n_special, value, with_valid):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, n, m, generator=g) * 3
    if scores.numel():
        flat = scores.view(-1)
        idx = torch.randint(0, flat.numel(), (n_special,), generator=g)
        flat[idx] = value
    valid = torch.rand(b, n, m, generator=g) > 0.3 if with_valid else None
    x = solve_matching(scores, valid, num_iters=60)
    assert x.shape == scores.shape and torch.isfinite(x).all()
    assert (x >= 0).all() and (x.sum(2) <= 1 + 1e-4).all() and (x.sum(1) <= 1 + 1e-4).all()
    bad = ~torch.isfinite(scores)
    if valid is not None:
        bad |= ~valid
    assert (x[bad] == 0).all()
    r = round_matching(x, valid)
    assert (r.sum(2) <= 1).all() and (r.sum(1) <= 1).all() and not (r & bad).any()


def test_matching_very_large_problem_is_defined_and_bounded():
    scores = torch.rand(1, 400, 300)
    x = solve_matching(scores, num_iters=100)
    assert torch.isfinite(x).all() and (x.sum(2) <= 1 + 1e-4).all() and (x.sum(1) <= 1 + 1e-4).all()
    assert round_matching(x).sum() <= 300
