"""``python -m mesh_components``: see :mod:`mesh_components.cli`."""
import sys

from .cli import main

sys.exit(main())
