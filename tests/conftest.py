"""Shared fixtures: a small synthetic benchmark written once per test session."""
import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def synthetic_root(tmp_path_factory):
    """Point ``DSPF_SYNTHETIC_ROOT`` at a per-session folder so tests never touch ./datasets."""
    root = tmp_path_factory.mktemp("synthetic_humans")
    old = os.environ.get("DSPF_SYNTHETIC_ROOT")
    os.environ["DSPF_SYNTHETIC_ROOT"] = str(root)
    yield str(root)
    if old is None:
        os.environ.pop("DSPF_SYNTHETIC_ROOT", None)
    else:
        os.environ["DSPF_SYNTHETIC_ROOT"] = old
