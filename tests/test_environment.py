"""The detectron2 installation: the _C placeholder answers, never shadows, and import order is free."""
import subprocess
import sys

import pytest

import detectron2
from dspf_parser.utils.env import detectron2_native_extension_available

placeholder_only = pytest.mark.skipif(
    detectron2_native_extension_available(), reason="detectron2 has its real native extension"
)


@placeholder_only
def test_placeholder_answers_version_queries_used_by_default_setup():
    from detectron2 import _C
    from detectron2.utils.collect_env import collect_env_info

    assert "without its native extension" in _C.get_compiler_version()
    assert "without its native extension" in _C.get_cuda_version()
    assert _C.has_cuda() is False
    assert "detectron2" in collect_env_info()


@placeholder_only
def test_placeholder_native_ops_fail_with_a_clear_message():
    from detectron2 import _C

    with pytest.raises(ImportError, match="deform_conv_forward is unavailable.*without its native extension"):
        _C.deform_conv_forward


@placeholder_only
def test_placeholder_lives_inside_the_installed_detectron2_only():
    import os

    from detectron2 import _C

    assert os.path.dirname(_C.__file__) == os.path.dirname(detectron2.__file__)
    import dspf_parser

    assert not any(name.endswith("_C") for name in vars(dspf_parser))


@pytest.mark.parametrize("order", ["detectron2 first", "dspf_parser first"])
def test_import_order_does_not_matter(order):
    first, second = ("detectron2.engine", "dspf_parser") if order == "detectron2 first" else ("dspf_parser", "detectron2.engine")
    code = (
        f"import {first}, {second}\n"
        "from detectron2.engine import default_setup\n"
        "from detectron2.modeling import META_ARCH_REGISTRY\n"
        "from detectron2 import _C\n"
        "print(_C.get_compiler_version())\n"
        "assert 'DSPFParser' in META_ARCH_REGISTRY\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
