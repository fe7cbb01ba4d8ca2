"""The notebook of docs/notebooks runs in a Jupyter kernel with nothing on stderr.

It shows what a notebook user sees: the estimator's HTML summary, a progress
bar (a widget: the ``progress`` extra brings ipywidgets, without which rich
warns on every fit), ``verbose`` lines, a loss curve (an image) and a grid
search with its nested progress.
"""

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
KernelManager = pytest.importorskip("jupyter_client").KernelManager
pytest.importorskip("ipywidgets")
pytest.importorskip("rich")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn.callback", reason="callbacks need scikit-learn >= 1.9")

NOTEBOOK = Path(__file__).parent.parent / "docs" / "notebooks" / "everyday_use.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook's code cells after a run, in a kernel of this Python."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + path  # the kernel's python
    # IPC sockets on Linux: TCP ports picked for the kernel can be taken meanwhile by
    # another test's processes (a dask cluster), and the kernel then never answers
    transport = "ipc" if sys.platform.startswith("linux") else "tcp"
    workdir = tmp_path_factory.mktemp("notebook")
    manager = KernelManager(kernel_name="python3", transport=transport,
                            connection_file=str(workdir / "kernel.json"))
    if transport == "ipc":
        manager.ip = str(workdir / "kernel-ipc")
    try:
        nbclient.NotebookClient(
            notebook, km=manager, timeout=120, startup_timeout=60,
            resources={"metadata": {"path": str(workdir)}},
        ).execute()
    finally:
        os.environ["PATH"] = path
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def kinds(cell):
    """The MIME types and stream names of a cell's outputs."""
    found = set()
    for output in cell.outputs:
        found |= set(output.get("data", {}))
        if output.output_type == "stream":
            found.add(output.name)
        if output.output_type == "error":
            found.add("error")
    return found


def test_no_cell_writes_to_stderr_or_fails(executed):
    for cell in executed:
        assert not kinds(cell) & {"stderr", "error"}, cell.source


def test_the_notebook_shows_the_summary_the_progress_the_epochs_the_curve_and_the_search(
        executed):
    setup, summary, fit, verbose, curve, search = executed
    assert "text/html" in kinds(summary)
    assert WIDGET in kinds(fit) and "epochs, test accuracy" in fit.outputs[-1].text
    lines = "".join(o.text for o in verbose.outputs if o.output_type == "stream").splitlines()
    assert len(lines) > 2 and all(line.startswith("Iteration ") for line in lines[:-1])
    assert lines[-1].endswith("Stopping.")  # early stopping says why it stopped
    assert "image/png" in kinds(curve)
    assert WIDGET in kinds(search)
    assert "'alpha'" in search.outputs[-1]["data"]["text/plain"]
