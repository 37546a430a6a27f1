"""App services of a kernel: definitions, prestart actions, and the supervising manager."""

from .actions import run_prestart_actions
from .definitions import ServiceDefinition, ServiceDefinitionError, TemplateError, load_definition, load_definitions
from .events import EventBus
from .manager import ManagerContext, ServiceManager

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
