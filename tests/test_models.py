"""Model-definition loading: the example files, defaults, and errors naming model and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend_kernel_provisioner.sidecar.models.definitions import (
    HealthCheck,
    ModelDefinitionError,
    load_model_definition,
    parse_model_info,
)

DATA = Path(__file__).parent / "data" / "models"


def _entry(**service) -> dict:
    base = {"start_command": ["python3", "-m", "http.server"], "port": 8000}
    base.update(service)
    return {"name": "m", "model_path": "/tmp", "service": base}


def test_example_definition_loads_with_its_health_check():
    (model,) = load_model_definition(DATA / "model-definition.yaml")
    assert model.name == "echo-model"
    assert model.model_path == "/tmp"
    assert model.service.port == 18080
    assert model.service_name == "echo-model-18080"
    assert model.service.start_command[:3] == ["python3", "-m", "http.server"]
    assert model.service.pre_start_actions == [
        {"action": "log", "args": {"message": "starting echo-model on {ports[0]}"}}
    ]
    assert model.service.health_check == HealthCheck(
        enable=True, path="/", max_retries=3, max_wait_time=2, expected_status_code=200,
        initial_delay=0, interval=1,
    )


def test_no_health_check_example_has_none():
    (model,) = load_model_definition(DATA / "no-health-check.yaml")
    assert model.name == "plain-model"
    assert model.service.health_check is None
    assert model.service.pre_start_actions == []


def test_missing_port_example_is_refused_naming_port_and_model():
    with pytest.raises(ModelDefinitionError) as info:
        load_model_definition(DATA / "bad-missing-port.yaml")
    message = str(info.value)
    assert "'service.port'" in message and "missing" in message
    assert "'broken'" in message
    assert "bad-missing-port.yaml" in message


def test_health_check_defaults_are_the_runners():
    model = parse_model_info(_entry(health_check={"enable": True}))
    assert model.service.health_check == HealthCheck(
        enable=True, path="/health", max_retries=10, max_wait_time=15, expected_status_code=200,
        initial_delay=60, interval=10,
    )


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"model_path": "/tmp", "service": {"start_command": ["x"], "port": 1}}, "name"),
        ({"name": "m", "service": {"port": 1}}, "service.start_command"),
        ({"name": "m"}, "service"),
        (_entry(port="8000"), "service.port"),
        (_entry(port=True), "service.port"),
        (_entry(port=70000), "service.port"),
        (_entry(start_command=[]), "service.start_command"),
        (_entry(start_command=[["nested"]]), "service.start_command"),
        (_entry(health_check={"max_retries": "3"}), "service.health_check.max_retries"),
        (_entry(health_check={"interval": 0}), "service.health_check.interval"),
        (_entry(health_check={"enable": "yes"}), "service.health_check.enable"),
        (_entry(health_check={"timeout": 3}), "service.health_check.timeout"),
        (_entry(health_check=[]), "service.health_check"),
        (_entry(pre_start_actions=[{"args": {}}]), "service.pre_start_actions[0]"),
        (_entry(restart=True), "service.restart"),
        ({**_entry(), "model_pth": "/x"}, "model_pth"),
        ({**_entry(), "model_path": 3}, "model_path"),
    ],
)
def test_bad_entries_name_the_field(entry, field):
    with pytest.raises(ModelDefinitionError) as info:
        parse_model_info(entry, "defs.yaml")
    message = str(info.value)
    assert f"field {field!r}" in message
    assert message.startswith("defs.yaml: model ")


def test_error_names_the_model():
    with pytest.raises(ModelDefinitionError, match="model 'llama'.*'service.port'"):
        parse_model_info({"name": "llama", "service": {"start_command": ["x"], "port": "p"}})


def test_command_string_is_kept_for_a_shell():
    model = parse_model_info(_entry(start_command="python3 -m http.server 8000"))
    assert model.service.start_command == "python3 -m http.server 8000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models: [", "not valid YAML"),
        ("name: x\n", "top-level 'models'"),
        ("models: {a: 1}\n", "'models' must be a list"),
        ("models: []\nextra: 1\n", "unknown top-level field 'extra'"),
        (
            "models:\n"
            "  - {name: a, service: {start_command: [x], port: 1}}\n"
            "  - {name: a, service: {start_command: [x], port: 2}}\n",
            "model 'a': field 'name' is used twice",
        ),
    ],
)
def test_bad_documents(tmp_path, text, expected):
    path = tmp_path / "defs.yaml"
    path.write_text(text)
    with pytest.raises(ModelDefinitionError, match=expected) as info:
        load_model_definition(path)
    assert str(path) in str(info.value)


def test_unreadable_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ModelDefinitionError, match="nope.yaml: cannot read"):
        load_model_definition(missing)
