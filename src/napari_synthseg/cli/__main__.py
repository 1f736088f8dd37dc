"""``python -m napari_synthseg.cli``: the ``synthseg`` command."""

import sys

from napari_synthseg.cli import main

sys.exit(main())
