"""Model definitions: the YAML that describes model servers, loaded into checked dataclasses.

A definition file holds ``models:``, a list of entries (the same payload the runner's
``start-model-service`` op took).  Every problem is reported as a
:class:`ModelDefinitionError` naming the file, the model and the field, so a person can fix
the YAML without reading our code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from backend_kernel_provisioner.sidecar.services.definitions import name_problem

_MODEL_KEYS = {"name", "model_path", "service"}
_SERVICE_KEYS = {"pre_start_actions", "start_command", "port", "health_check"}
_HEALTH_KEYS = {
    "enable", "path", "max_retries", "max_wait_time", "expected_status_code", "initial_delay", "interval",
}


class ModelDefinitionError(ValueError):
    """A model definition that cannot be used; the message names the model and the field."""


@dataclass(frozen=True)
class HealthCheck:
    """How (and whether) a model server's health is probed; defaults are the runner's."""

    enable: bool = True
    path: str = "/health"
    max_retries: int = 10
    max_wait_time: float = 15.0
    expected_status_code: int = 200
    initial_delay: float = 60.0
    interval: float = 10.0


@dataclass(frozen=True)
class ModelService:
    """The process serving a model."""

    start_command: list[str] | str
    port: int
    pre_start_actions: list[dict[str, Any]] = field(default_factory=list)
    health_check: HealthCheck | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One entry of a definition's ``models`` list."""

    name: str
    service: ModelService
    model_path: str = ""

    @property
    def service_name(self) -> str:
        """The service registry name the runner used: ``<name>-<port>``."""
        return f"{self.name}-{self.service.port}"


# -- parsing -------------------------------------------------------------------------------------


class _Where:
    """Builds error messages that name the source, the model and the field."""

    def __init__(self, source: str, model: str) -> None:
        self.source = source
        self.model = model

    def error(self, field_name: str, problem: str) -> ModelDefinitionError:
        prefix = f"{self.source}: " if self.source else ""
        return ModelDefinitionError(f"{prefix}model {self.model!r}: field {field_name!r} {problem}")


def _mapping(value: Any, where: _Where, field_name: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(field_name or "(entry)", f"must be a mapping, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        prefix = f"{field_name}." if field_name else ""
        raise where.error(prefix + unknown[0], f"is not a known field (known: {', '.join(sorted(allowed))})")
    return value


def _typed(value: Any, kinds: tuple[type, ...], where: _Where, field_name: str, what: str) -> Any:
    # bool is an int in Python; a port or a retry count of `true` is a mistake.
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise where.error(field_name, f"must be {what}, got {type(value).__name__} {value!r}")
    return value


def _number(value: Any, where: _Where, field_name: str, *, minimum: float = 0) -> float:
    _typed(value, (int, float), where, field_name, "a number")
    if value < minimum:
        raise where.error(field_name, f"must be at least {minimum}, got {value!r}")
    return float(value)


def _parse_health_check(raw: Any, where: _Where) -> HealthCheck | None:
    if raw is None:
        return None
    data = _mapping(raw, where, "service.health_check", _HEALTH_KEYS)
    name = "service.health_check."
    values: dict[str, Any] = {}
    if "enable" in data:
        values["enable"] = _typed(data["enable"], (bool,), where, name + "enable", "true or false")
    if "path" in data:
        path = _typed(data["path"], (str,), where, name + "path", "a string")
        values["path"] = path if path.startswith("/") else "/" + path
    for key in ("max_retries", "expected_status_code"):
        if key in data:
            values[key] = _typed(data[key], (int,), where, name + key, "an integer")
            if values[key] < 0:
                raise where.error(name + key, f"must not be negative, got {values[key]!r}")
    for key in ("max_wait_time", "interval"):
        if key in data:
            values[key] = _number(data[key], where, name + key, minimum=0.001)
    if "initial_delay" in data:
        values["initial_delay"] = _number(data["initial_delay"], where, name + "initial_delay")
    return HealthCheck(**values)


def _parse_actions(raw: Any, where: _Where) -> list[dict[str, Any]]:
    if raw is None:
        return []
    _typed(raw, (list,), where, "service.pre_start_actions", "a list")
    for index, action in enumerate(raw):
        field_name = f"service.pre_start_actions[{index}]"
        if not isinstance(action, dict) or not isinstance(action.get("action"), str):
            raise where.error(field_name, "must be a mapping with an 'action' name")
        if "args" in action and not isinstance(action["args"], dict):
            raise where.error(field_name + ".args", "must be a mapping")
    return [dict(a) for a in raw]


def _parse_command(raw: Any, where: _Where) -> list[str] | str:
    if isinstance(raw, str) and raw.strip():
        return raw  # newer images give one string, run by a shell
    if isinstance(raw, list) and raw and all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in raw):
        return [str(a) for a in raw]
    raise where.error("service.start_command", f"must be a non-empty list of strings, got {raw!r}")


def parse_model_info(raw: Any, source: str = "") -> ModelInfo:
    """Check one ``models`` entry (a dict from YAML or from an API call) and build a ModelInfo."""
    name = raw.get("name") if isinstance(raw, dict) else None
    where = _Where(source, name if isinstance(name, str) else "?")
    data = _mapping(raw, where, "", _MODEL_KEYS)
    if "name" not in data:
        raise where.error("name", "is missing")
    if not isinstance(name, str) or not name.strip():
        raise where.error("name", f"must be a non-empty string, got {name!r}")
    model_path = data.get("model_path", "")
    if model_path is None:
        model_path = ""
    _typed(model_path, (str,), where, "model_path", "a string")
    if "service" not in data:
        raise where.error("service", "is missing")
    service = _mapping(data["service"], where, "service", _SERVICE_KEYS)
    for required in ("start_command", "port"):
        if required not in service:
            raise where.error(f"service.{required}", "is missing")
    port = _typed(service["port"], (int,), where, "service.port", "an integer")
    if not 0 < port < 65536:
        raise where.error("service.port", f"must be between 1 and 65535, got {port}")
    # The server runs as service ``<name>-<port>``, whose name becomes its log file's name.
    problem = name_problem(name, "model name") or name_problem(f"{name}-{port}", "its service name")
    if problem:
        raise where.error("name", f"is not usable: {problem}")
    return ModelInfo(
        name=name,
        model_path=model_path,
        service=ModelService(
            start_command=_parse_command(service["start_command"], where),
            port=port,
            pre_start_actions=_parse_actions(service.get("pre_start_actions"), where),
            health_check=_parse_health_check(service.get("health_check"), where),
        ),
    )


def parse_model_definition(document: Any, source: str = "") -> list[ModelInfo]:
    """All models of a parsed definition document; names must be unique."""
    prefix = f"{source}: " if source else ""
    if not isinstance(document, dict) or "models" not in document:
        raise ModelDefinitionError(f"{prefix}a model definition needs a top-level 'models' list")
    unknown = sorted(str(k) for k in document if k != "models")
    if unknown:
        raise ModelDefinitionError(f"{prefix}unknown top-level field {unknown[0]!r} (known: models)")
    entries = document["models"] or []
    if not isinstance(entries, list):
        raise ModelDefinitionError(f"{prefix}'models' must be a list, got {type(entries).__name__}")
    models = [parse_model_info(entry, source) for entry in entries]
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise ModelDefinitionError(f"{prefix}model {model.name!r}: field 'name' is used twice")
        seen.add(model.name)
    return models


def load_model_definition(path: str | os.PathLike[str]) -> list[ModelInfo]:
    """Read and check a model-definition YAML file."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as fh:
            document = yaml.safe_load(fh)
    except OSError as exc:
        raise ModelDefinitionError(f"{source}: cannot read the model definition: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ModelDefinitionError(f"{source}: not valid YAML: {exc}") from exc
    return parse_model_definition(document, source)
