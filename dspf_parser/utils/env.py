"""Facts about the installed detectron2 that users and tests need to know."""
import importlib

__all__ = ["detectron2_native_extension_available"]


def detectron2_native_extension_available() -> bool:
    """True when ``detectron2._C`` is the compiled extension, False for the placeholder.

    The placeholder is installed by ``tools/setup_env.sh`` when detectron2 comes from the
    registry's Python-only source distribution; it marks itself with ``DSPF_PLACEHOLDER``.
    """
    try:
        native = importlib.import_module("detectron2._C")
    except ImportError:
        return False
    return not getattr(native, "DSPF_PLACEHOLDER", False)
