"""``python -m backend_kernel_provisioner.launcher``."""

from backend_kernel_provisioner.launcher.cli import main

raise SystemExit(main())
