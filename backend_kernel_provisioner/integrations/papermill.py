"""Papermill support: parameter cells in every backend kernel's language.

Papermill has no entry point for translators, but it imports every
``papermill.engine`` entry point when it starts; ours (``backend``, the
standard nbclient engine) registers the translators as it is imported, so
``papermill -p name value`` works with our kernels from the command line too.

Compiled languages keep no state between cells, so their parameters become
``%env NAME=VALUE`` magics that later cells read with ``getenv``.
"""

from __future__ import annotations

import json
from typing import Any


class BackendEngine:
    """Papermill's standard nbclient engine; importing this module registers our translators.

    Defined before anything of papermill is imported: papermill loads this entry
    point while it is itself being imported, so the name must already exist.
    """

    @classmethod
    def execute_notebook(cls, *args: Any, **kwargs: Any) -> Any:
        from papermill.engines import NBClientEngine

        return NBClientEngine.execute_notebook(*args, **kwargs)


from papermill.translators import (  # noqa: E402
    BashTranslator,
    JuliaTranslator,
    PythonTranslator,
    RTranslator,
    Translator,
    papermill_translators,
)

from backend_kernel_provisioner.common.languages import LANGUAGES  # noqa: E402


class EnvTranslator(Translator):
    """Parameters as environment variables, for C, C++, Go, Rust and Java cells."""

    @classmethod
    def translate(cls, val: Any) -> str:
        return val if isinstance(val, str) else json.dumps(val)

    @classmethod
    def comment(cls, cmt_str: str) -> str:
        return ""

    @classmethod
    def assign(cls, name: str, str_val: str) -> str:
        return f"%env {name}={str_val}"

    @classmethod
    def codify(cls, parameters: dict[str, Any], comment: str = "Parameters") -> str:
        return "".join(f"{cls.assign(name, cls.translate(val))}\n" for name, val in parameters.items())


class _JsonValues(Translator):
    """Values as JSON literals (valid in JavaScript, and close enough for the languages below)."""

    @classmethod
    def translate_str(cls, val: str) -> str:
        return json.dumps(val)

    @classmethod
    def translate_none(cls, val: None) -> str:
        return "null"

    @classmethod
    def translate_bool(cls, val: bool) -> str:
        return "true" if val else "false"

    @classmethod
    def translate_dict(cls, val: dict) -> str:
        return json.dumps(val)

    @classmethod
    def translate_list(cls, val: list) -> str:
        return json.dumps(val)


class JavaScriptTranslator(_JsonValues):
    @classmethod
    def comment(cls, cmt_str: str) -> str:
        return f"// {cmt_str}"

    @classmethod
    def assign(cls, name: str, str_val: str) -> str:
        return f"var {name} = {str_val};"


class LuaTranslator(_JsonValues):
    @classmethod
    def translate_none(cls, val: None) -> str:
        return "nil"

    @classmethod
    def translate_list(cls, val: list) -> str:
        return "{" + ", ".join(cls.translate(v) for v in val) + "}"

    @classmethod
    def translate_dict(cls, val: dict) -> str:
        return "{" + ", ".join(f"[{json.dumps(str(k))}] = {cls.translate(v)}" for k, v in val.items()) + "}"

    @classmethod
    def comment(cls, cmt_str: str) -> str:
        return f"-- {cmt_str}"


class PhpTranslator(_JsonValues):
    @classmethod
    def translate_str(cls, val: str) -> str:
        return "'" + val.replace("\\", "\\\\").replace("'", "\\'") + "'"

    @classmethod
    def translate_list(cls, val: list) -> str:
        return "[" + ", ".join(cls.translate(v) for v in val) + "]"

    @classmethod
    def translate_dict(cls, val: dict) -> str:
        return "[" + ", ".join(f"{cls.translate(str(k))} => {cls.translate(v)}" for k, v in val.items()) + "]"

    @classmethod
    def comment(cls, cmt_str: str) -> str:
        return f"// {cmt_str}"

    @classmethod
    def assign(cls, name: str, str_val: str) -> str:
        return f"${name} = {str_val};"


class SchemeTranslator(_JsonValues):
    @classmethod
    def translate_bool(cls, val: bool) -> str:
        return "#t" if val else "#f"

    @classmethod
    def translate_none(cls, val: None) -> str:
        return "'()"

    @classmethod
    def translate_list(cls, val: list) -> str:
        return "(list " + " ".join(cls.translate(v) for v in val) + ")"

    @classmethod
    def comment(cls, cmt_str: str) -> str:
        return f";; {cmt_str}"

    @classmethod
    def assign(cls, name: str, str_val: str) -> str:
        return f"(define {name} {str_val})"


class HaskellTranslator(_JsonValues):
    @classmethod
    def translate_bool(cls, val: bool) -> str:
        return "True" if val else "False"

    @classmethod
    def comment(cls, cmt_str: str) -> str:
        return f"-- {cmt_str}"

    @classmethod
    def assign(cls, name: str, str_val: str) -> str:
        return f"let {name} = {str_val}"


class OctaveTranslator(_JsonValues):
    @classmethod
    def translate_str(cls, val: str) -> str:
        return "'" + val.replace("'", "''") + "'"

    @classmethod
    def comment(cls, cmt_str: str) -> str:
        return f"% {cmt_str}"

    @classmethod
    def assign(cls, name: str, str_val: str) -> str:
        return f"{name} = {str_val};"


#: Translators papermill registers for their languages itself.
PAPERMILL_OWN = {"python", "r", "julia", "bash"}

#: The table's ``translator`` names (``common/languages.py``) → translator classes.
TRANSLATORS: dict[str, type[Translator]] = {
    "python": PythonTranslator,
    "r": RTranslator,
    "julia": JuliaTranslator,
    "bash": BashTranslator,
    "env": EnvTranslator,
    "javascript": JavaScriptTranslator,
    "lua": LuaTranslator,
    "php": PhpTranslator,
    "scheme": SchemeTranslator,
    "haskell": HaskellTranslator,
    "octave": OctaveTranslator,
}


def register_translators() -> None:
    """Each of our kernels by kernel name, and each Jupyter language papermill does not know yet.

    Registering by kernel name covers notebooks whose metadata names our kernel but not its language.
    """
    for spec in LANGUAGES.values():
        translator = TRANSLATORS.get(spec.translator)
        if translator is None:
            continue
        papermill_translators.register(spec.spec_name, translator)
        if spec.translator not in PAPERMILL_OWN:
            papermill_translators.register(spec.jupyter_language, translator)


register_translators()
