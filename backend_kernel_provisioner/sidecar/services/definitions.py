"""Service definitions: the runner's JSON DSL, validated at load time, and a safe template formatter.

A definition is checked completely when it is read, so that a typo is reported
with the file and the field before anything runs; templates are expanded later,
at start, when the ports and ``ref`` results are known.
"""

from __future__ import annotations

import _string  # the parser str.format itself uses
import dataclasses
import json
import os
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Prestart actions and the arguments each accepts (required ones first in REQUIRED_ARGS).
ACTION_ARGS: dict[str, set[str]] = {
    "write_file": {"filename", "body", "mode", "append"},
    "write_tempfile": {"body", "mode"},
    "mkdir": {"path"},
    "run_command": {"command", "echo"},
    "log": {"message", "body", "debug"},
}
REQUIRED_ARGS: dict[str, tuple[str, ...]] = {
    "write_file": ("filename", "body"),
    "write_tempfile": ("body",),
    "mkdir": ("path",),
    "run_command": ("command",),
    "log": (),
}
RESTART_POLICIES = ("never", "on-failure", "always")
READINESS_TYPES = ("tcp", "http", "none")
#: What a service name may be: it names the service's log file, so no ``/``, no leading ``.`` or ``-``.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Largest width or precision a template's format spec may ask for, and largest expansion.
MAX_FIELD_WIDTH = 4096
MAX_EXPANSION = 64 * 1024


class ServiceDefinitionError(ValueError):
    """A definition that cannot be used; the message names the file (or service) and the field."""


class TemplateError(ServiceDefinitionError):
    """A template that names an unknown variable, uses attribute access, or indexes badly."""


def name_problem(name: Any, what: str = "service name") -> str | None:
    """Why ``name`` cannot name a service (None when it can): names become file names in the private folder."""
    if isinstance(name, str) and re.fullmatch(NAME_PATTERN, name):
        return None
    return (f"{what} {name!r} is not allowed: a name is 1-64 letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit ({NAME_PATTERN})")


# -- templates ------------------------------------------------------------------------------


class SafeFormatter(string.Formatter):
    """``str.format`` over a variable map that allows ``{a[0]}`` / ``{a[key]}`` but no ``{a.attr}``.

    Attribute access is refused because templates come from image authors and
    ``{ports.__class__...}`` would otherwise reach into the interpreter. Widths and
    precisions above :data:`MAX_FIELD_WIDTH` and expansions above :data:`MAX_EXPANSION`
    are refused before the string is built (``{ports[0]:>200000000}`` would cost
    hundreds of MiB). With ``quote``, each substituted value is shell-quoted: the
    template is a shell script and a value (a folder name) must stay one word.
    """

    def __init__(self, source: str, quote: bool = False) -> None:
        self.source = source
        self.quote = quote
        self.size = 0

    def get_field(self, field_name: str, args: Any, kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        first, rest = _string.formatter_field_name_split(field_name)
        if isinstance(first, int) or first == "":
            raise TemplateError(f"{self.source}: positional field {{{field_name}}} is not allowed; name a variable")
        if first not in kwargs:
            known = ", ".join(sorted(kwargs)) or "none"
            raise TemplateError(f"{self.source}: unknown variable {first!r} in {{{field_name}}} (known: {known})")
        value = kwargs[first]
        for is_attr, key in rest:
            if is_attr:
                raise TemplateError(
                    f"{self.source}: attribute access {{{field_name}}} is not allowed in templates (use [index])"
                )
            try:
                value = value[key]
            except (LookupError, TypeError) as exc:
                raise TemplateError(f"{self.source}: cannot index {{{field_name}}}: {exc!r}") from None
        return value, first

    def format_field(self, value: Any, format_spec: str) -> str:
        for digits in re.findall(r"[0-9]+", format_spec):
            number = digits.lstrip("0")
            if len(number) > 4 or (number and int(number) > MAX_FIELD_WIDTH):
                raise TemplateError(f"{self.source}: format spec {format_spec[:40]!r} asks for a width or precision "
                                    f"of {number[:20]}; at most {MAX_FIELD_WIDTH} is allowed")
        text = super().format_field(value, format_spec)
        if self.quote:
            text = shlex.quote(text)
        self.size += len(text)
        self._check_size(self.size)
        return text

    def _check_size(self, size: int) -> None:
        if size > MAX_EXPANSION:
            raise TemplateError(f"{self.source}: the expansion is longer than {MAX_EXPANSION} characters")

    def expand(self, template: str, variables: Mapping[str, Any]) -> str:
        try:
            result = self.vformat(template, (), variables)
        except TemplateError:
            raise
        except (ValueError, IndexError, KeyError) as exc:
            raise TemplateError(f"{self.source}: bad template {template!r}: {exc}") from None
        self._check_size(len(result))
        return result


def expand(template: str, variables: Mapping[str, Any], source: str, *, quote: bool = False) -> str:
    """Expand one template; errors name ``source`` (service and field); ``quote``: shell-quote each value."""
    return SafeFormatter(source, quote).expand(template, variables)


# -- definitions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PrestartAction:
    action: str
    args: dict[str, Any]
    ref: str | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """supervisord-like policy: restart on unexpected exit, retries with growing delays, then fatal."""

    policy: str = "never"
    max_retries: int = 3
    min_uptime: float = 1.0
    backoff: float = 0.5
    max_backoff: float = 30.0


@dataclass(frozen=True)
class Readiness:
    """How a start is judged ready: the port accepts TCP, or answers HTTP with an accepted status."""

    type: str = "tcp"
    path: str = "/"
    status: tuple[int, ...] = (200,)
    timeout: float | None = None  # None: the manager's start timeout


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    source: str
    command: list[str] | str
    prestart: list[PrestartAction] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    url_template: str | None = None
    allowed_arguments: list[str] | None = None
    default_arguments: dict[str, None | str | list[str]] = field(default_factory=dict)
    allowed_envs: list[str] | None = None
    noop: bool = False
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    readiness: Readiness = field(default_factory=Readiness)

    def app_info(self) -> dict[str, Any]:
        """The ``get-apps`` entry: only the fields the definition has."""
        info: dict[str, Any] = {"name": self.name}
        for key in ("url_template", "allowed_arguments", "allowed_envs"):
            value = getattr(self, key)
            if value is not None:
                info[key] = value
        return info


FIELDS = {
    "command", "prestart", "prestart_actions", "env", "url_template", "allowed_arguments",
    "default_arguments", "allowed_envs", "noop", "restart", "readiness",
}


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ServiceDefinitionError(f"{where}: {message}")


def parse_action(raw: Any, where: str) -> PrestartAction:
    """Validate one prestart action; ``where`` names the file and the list index."""
    _require(isinstance(raw, dict), where, "an action must be an object with 'action' and 'args'")
    unknown = set(raw) - {"action", "args", "ref"}
    _require(not unknown, where, f"unknown key(s) {sorted(unknown)} in action")
    name = raw.get("action")
    _require(isinstance(name, str), where, "field 'action' is missing or not a string")
    _require(name in ACTION_ARGS, where, f"unknown action {name!r} (known: {', '.join(sorted(ACTION_ARGS))})")
    args = raw.get("args", {})
    _require(isinstance(args, dict), f"{where} ({name})", "field 'args' must be an object")
    unknown = set(args) - ACTION_ARGS[name]
    _require(not unknown, f"{where} ({name})", f"unknown argument(s) {sorted(unknown)}")
    for req in REQUIRED_ARGS[name]:
        _require(req in args, f"{where} ({name})", f"argument {req!r} is required")
    if name == "log":
        _require("message" in args or "body" in args, f"{where} (log)", "argument 'message' is required")
    for key in ("body", "command"):
        if key in args and name != "log":
            _require(_is_str_list(args[key]), f"{where} ({name})", f"argument {key!r} must be a list of strings")
    if "mode" in args:
        mode = args["mode"]
        ok = isinstance(mode, str) and mode and all(c in "01234567" for c in mode)
        _require(bool(ok), f"{where} ({name})", f"argument 'mode' must be an octal string like \"644\", not {mode!r}")
    ref = raw.get("ref")
    _require(ref is None or (isinstance(ref, str) and ref.isidentifier()), where, "field 'ref' must be a name")
    return PrestartAction(name, dict(args), ref)


def _policy_object(raw: Any, where: str, field_name: str, shorthand: str, cls: type) -> dict[str, Any]:
    """``"name"`` or ``{...}`` for ``cls``; unknown keys are errors naming the field."""
    if isinstance(raw, str):
        raw = {shorthand: raw}
    _require(isinstance(raw, dict), where, f"field {field_name!r} must be a {shorthand} name or an object")
    unknown = set(raw) - {f.name for f in dataclasses.fields(cls)}
    _require(not unknown, where, f"unknown key(s) {sorted(unknown)} in {field_name!r}")
    return dict(raw)


def parse_restart(raw: Any, where: str) -> RestartPolicy:
    """A restart policy: ``"on-failure"`` or ``{policy, max_retries, min_uptime, backoff, max_backoff}``."""
    policy = RestartPolicy(**_policy_object(raw, where, "restart", "policy", RestartPolicy))
    _require(policy.policy in RESTART_POLICIES, where, f"restart policy must be one of {RESTART_POLICIES}")
    _require(isinstance(policy.max_retries, int) and policy.max_retries >= 0, where, "restart.max_retries must be >= 0")
    return policy


def parse_readiness(raw: Any, where: str) -> Readiness:
    """A readiness check: ``"tcp"``/``"http"``/``"none"`` or ``{type, path, status, timeout}``."""
    raw = _policy_object(raw, where, "readiness", "type", Readiness)
    if "status" in raw:
        status = raw["status"]
        raw["status"] = tuple(status) if isinstance(status, list) else (status,)
    ready = Readiness(**raw)
    _require(ready.type in READINESS_TYPES, where, f"readiness type must be one of {READINESS_TYPES}")
    return ready


#: What a client fills in when it builds a service's URL from ``url_template`` (the runner's three).
URL_TEMPLATE_VARIABLES = ("protocol", "host", "port")


def _check_url_template(url: str, source: str) -> None:
    """Refuse at load time what no client could expand: another variable, or broken braces.

    The template is expanded by the platform's client, not here, so a typo would otherwise surface
    only as a broken link in the user's browser.
    """
    try:
        used = [name for _, name, _, _ in string.Formatter().parse(url) if name is not None]
    except ValueError as exc:
        raise ServiceDefinitionError(f"{source}: field 'url_template': {exc}") from None
    for name in used:
        if name not in URL_TEMPLATE_VARIABLES:
            known = ", ".join(f"{{{v}}}" for v in URL_TEMPLATE_VARIABLES)
            raise ServiceDefinitionError(
                f"{source}: field 'url_template': unknown variable {{{name}}} (only {known})")


def parse_definition(name: str, data: Any, source: str) -> ServiceDefinition:
    """Validate a decoded definition; every error names ``source`` and the field."""
    problem = name_problem(name)
    _require(problem is None, source, f"field 'name' (the file's name): {problem}")
    _require(isinstance(data, dict), source, "a service definition must be a JSON object")
    unknown = set(data) - FIELDS
    _require(not unknown, source, f"unknown field(s) {', '.join(repr(k) for k in sorted(unknown))}")
    _require(not ("prestart" in data and "prestart_actions" in data), source,
             "give 'prestart' or its alias 'prestart_actions', not both")
    noop = data.get("noop", False)
    _require(isinstance(noop, bool), source, "field 'noop' must be true or false")
    _require("command" in data or noop, source, "field 'command' is required")
    command = data.get("command", [])
    _require(isinstance(command, str) or _is_str_list(command), source,
             "field 'command' must be a list of strings (or one shell command string)")
    _require(noop or bool(command), source, "field 'command' is empty")
    raw_actions = data.get("prestart", data.get("prestart_actions", []))
    _require(isinstance(raw_actions, list), source, "field 'prestart' must be a list of actions")
    actions = [parse_action(a, f"{source}: prestart[{i}]") for i, a in enumerate(raw_actions)]
    env = data.get("env", {})
    _require(isinstance(env, dict) and all(isinstance(v, str) for v in env.values()), source,
             "field 'env' must map names to strings")
    url = data.get("url_template")
    _require(url is None or isinstance(url, str), source, "field 'url_template' must be a string")
    if url is not None:
        _check_url_template(url, source)
    for key in ("allowed_arguments", "allowed_envs"):
        _require(data.get(key) is None or _is_str_list(data[key]), source, f"field {key!r} must be a list of strings")
    defaults = data.get("default_arguments", {})
    _require(isinstance(defaults, dict), source, "field 'default_arguments' must be an object")
    for arg, value in defaults.items():
        _require(value is None or isinstance(value, str) or _is_str_list(value), source,
                 f"default_arguments[{arg!r}] must be null, a string or a list of strings")
    return ServiceDefinition(
        name=name,
        source=source,
        command=command,
        prestart=actions,
        env=dict(env),
        url_template=url,
        allowed_arguments=data.get("allowed_arguments"),
        default_arguments=dict(defaults),
        allowed_envs=data.get("allowed_envs"),
        noop=noop,
        restart=parse_restart(data.get("restart", "never"), f"{source}: restart"),
        readiness=parse_readiness(data.get("readiness", "tcp"), f"{source}: readiness"),
    )


def load_definition(path: str | os.PathLike[str]) -> ServiceDefinition:
    """Read one ``<name>.json``; unreadable files and bad JSON are errors naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceDefinitionError(f"{path}: cannot read service definition: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ServiceDefinitionError(f"{path}: invalid JSON at {where}: {exc.msg}") from None
    return parse_definition(path.stem, data, str(path))


def load_definitions(folder: str | os.PathLike[str] | None) -> tuple[dict[str, ServiceDefinition], dict[str, str]]:
    """All definitions in ``folder``: (good ones by name, error message by name for the bad ones)."""
    good: dict[str, ServiceDefinition] = {}
    bad: dict[str, str] = {}
    if not folder or not os.path.isdir(folder):
        return good, bad
    for path in sorted(Path(folder).glob("*.json")):
        try:
            good[path.stem] = load_definition(path)
        except ServiceDefinitionError as exc:
            bad[path.stem] = str(exc)
    return good, bad
