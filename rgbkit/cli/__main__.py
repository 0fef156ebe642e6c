"""``python -m rgbkit.cli``."""
import sys

from . import main

sys.exit(main())
