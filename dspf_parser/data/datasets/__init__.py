from . import builtin  # noqa: F401  (registers the datasets)
