"""``python -m stylelens``: the same as the ``stylelens`` command."""

import sys

from stylelens.cli import main

sys.exit(main())
