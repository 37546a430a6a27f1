"""Every language's example notebook runs under nbclient and papermill (issue 9, acceptance 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from backend_kernel_provisioner.install.kernelspecs import LANGUAGES, missing_programs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
sys.path.insert(0, str(ROOT / "scripts"))
import make_example_notebooks as examples  # noqa: E402

LANGUAGE_NAMES = sorted(examples.NOTEBOOKS)


def require_toolchain(language: str) -> None:
    missing = missing_programs(LANGUAGES[language])
    if missing:
        pytest.skip(f"toolchain not installed: missing {', '.join(missing)}")


def stdout_of(nb: nbformat.NotebookNode) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "stream" and out.get("name") == "stdout"
    )


def test_committed_notebooks_match_generator() -> None:
    for language in LANGUAGE_NAMES:
        committed = nbformat.read(EXAMPLES / f"{language}.ipynb", as_version=4)
        assert committed == examples.build(language), language


@pytest.mark.kernel
@pytest.mark.parametrize("language", LANGUAGE_NAMES)
def test_nbclient_runs_notebook(language: str) -> None:
    require_toolchain(language)
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLES / f"{language}.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name=f"backend-{language}").execute()
    assert stdout_of(nb) == examples.expected_output("world")


@pytest.mark.kernel
@pytest.mark.parametrize("language", LANGUAGE_NAMES)
def test_papermill_injects_parameters(language: str, tmp_path: Path) -> None:
    require_toolchain(language)
    import papermill

    out = tmp_path / f"{language}-out.ipynb"
    papermill.execute_notebook(
        str(EXAMPLES / f"{language}.ipynb"), str(out), parameters={"who": "papermill"},
        kernel_name=f"backend-{language}", progress_bar=False, execution_timeout=300,
    )
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert stdout_of(nb) == examples.expected_output("papermill")
