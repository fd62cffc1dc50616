"""``python -m starwrs.cli`` runs the ``starwrs`` command."""

import sys

from starwrs.cli.main import main

sys.exit(main())
