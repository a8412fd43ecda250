"""Import a script of ``tools/`` as a module (``tools/`` is not a package), for its tests."""
import importlib.util
import os
from types import ModuleType

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")


def load_tool(filename: str) -> ModuleType:
    """``tools/<filename>`` executed as the module ``dspf_tool_<stem>``."""
    name = "dspf_tool_" + os.path.splitext(filename)[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
