"""``python -m backend_kernel_provisioner`` is the ``backend-kernels`` CLI."""

import sys

from backend_kernel_provisioner.install.cli import main

sys.exit(main())
