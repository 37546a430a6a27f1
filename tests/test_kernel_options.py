"""Kernel settings from the provisioner's kernel_options (BACKEND_KERNEL_OPTIONS JSON)."""

from __future__ import annotations

import json
import logging

from traitlets import Int, Unicode
from traitlets.config import LoggingConfigurable

import backend_kernel_provisioner.kernels.compiled  # noqa: F401  (registers %flags)
from backend_kernel_provisioner.kernels.base import apply_kernel_options
from backend_kernel_provisioner.kernels.magics import split_magics
from backend_kernel_provisioner.kernels.syntax import bracket_status


class Settings(LoggingConfigurable):
    flags = Unicode("-Wall", config=True, help="flags")
    output_limit = Int(10, config=True, help="cap")


def test_known_options_are_applied_and_unknown_ones_named(caplog) -> None:
    settings = Settings(log=logging.getLogger("options-test"))
    with caplog.at_level(logging.WARNING, logger="options-test"):
        apply_kernel_options(settings, json.dumps({"flags": "-O2", "output_limit": 5, "cflags": "-g"}))
    assert settings.flags == "-O2"
    assert settings.output_limit == 5
    assert "unknown kernel option 'cflags'" in caplog.text


def test_bad_values_and_bad_json_are_reported_not_fatal(caplog) -> None:
    settings = Settings(log=logging.getLogger("options-test"))
    with caplog.at_level(logging.WARNING, logger="options-test"):
        apply_kernel_options(settings, json.dumps({"output_limit": "lots"}))
        apply_kernel_options(settings, "{not json")
    assert settings.output_limit == 10
    assert "'output_limit' has a bad value" in caplog.text
    assert "not valid JSON" in caplog.text


def test_magic_lines_keep_the_cell_line_numbers() -> None:
    found, rest = split_magics("%env A=1\n// %flags -O2\nint main() {}\n%env B=2\n", "//")
    assert found == [("env", "A=1"), ("flags", "-O2")]
    assert rest.split("\n")[2] == "int main() {}"
    assert rest.count("\n") == 4, "magic lines become blank lines"


def test_bracket_status_ignores_strings_and_comments() -> None:
    assert bracket_status('printf("{");') == "complete"
    assert bracket_status("int f() { // }") == "incomplete"
    assert bracket_status("a = b);") == "invalid"
