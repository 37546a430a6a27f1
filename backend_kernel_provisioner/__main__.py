"""``python -m backend_kernel_provisioner`` is the ``backend-kernels`` CLI."""

import sys

from .cli import main

sys.exit(main())
