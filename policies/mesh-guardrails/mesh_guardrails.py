"""The mesh-guardrails rules, as the policy pack loads them.

The pure validators live in the library, ``mesh_components/analysis/guardrails.py``, so that
``python -m mesh_components validate`` runs the very same rules offline (an installed CLI cannot
import from ``policies/``); this module re-exports them for ``__main__.py`` and the tests. The
library module needs only the standard library. When ``mesh_components`` is not installed in the
pack's virtual environment, it is read from this repository (two folders up): the pack's
``requirements.txt`` cannot install it by a relative path, since pip resolves such a path against
the working folder, which differs between the Pulumi CLI and the workflows (pypa/pip#6112).
"""
import os
import sys

try:
    import mesh_components.analysis.guardrails  # noqa: F401  (installed: the program's venv, or a published pack's)
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from mesh_components.analysis.guardrails import *  # noqa: E402,F401,F403
from mesh_components.analysis.guardrails import __all__  # noqa: E402,F401
