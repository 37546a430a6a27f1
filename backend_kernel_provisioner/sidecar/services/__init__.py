"""App services of a kernel: definitions, prestart actions, and the supervising manager."""

from backend_kernel_provisioner.common.events import EventBus
from backend_kernel_provisioner.sidecar.services.actions import run_prestart_actions
from backend_kernel_provisioner.sidecar.services.definitions import (
    ServiceDefinition,
    ServiceDefinitionError,
    TemplateError,
    load_definition,
    load_definitions,
)
from backend_kernel_provisioner.sidecar.services.manager import ManagerContext, ServiceManager

__all__ = [
    "EventBus",
    "ManagerContext",
    "ServiceDefinition",
    "ServiceDefinitionError",
    "ServiceManager",
    "TemplateError",
    "load_definition",
    "load_definitions",
    "run_prestart_actions",
]
