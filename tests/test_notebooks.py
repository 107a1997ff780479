"""The notebooks in ``notebooks/`` run top to bottom and are committed without outputs.

Each notebook is executed with nbclient in a fresh kernel, in a temporary
working directory, with ``BAYESSCALE_NOTEBOOK_FAST=1`` (short chains, small
studies; the notebooks read it in their first cell) and ``MPLBACKEND=Agg``.
The kernel must be this interpreter (the project's virtual environment), not
whatever ``python3`` a user-level kernelspec points at: the check below makes
sure of that, and pins it through ``JUPYTER_PATH`` when it is not.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "python3"

# Executing a notebook also sees deprecation notices from the Jupyter stack; they are not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _kernel_python(spec) -> str:
    """The interpreter a kernelspec starts, resolved as jupyter_client resolves it."""
    exe = spec.argv[0]
    # jupyter_client runs a bare "python" / "python3" / "python3.X" with sys.executable
    if exe in {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}:
        return sys.executable
    return exe


def _resolves_here() -> bool:
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        return False
    return _same_file(_kernel_python(spec), sys.executable)


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Environment for the kernels: FAST settings, no display, and a kernel on this interpreter."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BAYESSCALE_NOTEBOOK_FAST", "1")
    mp.setenv("MPLBACKEND", "Agg")
    mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # files a notebook writes with tempfile (notebook 2 writes a CSV and a report) land in pytest's tmp
    mp.setenv("TMPDIR", str(tmp_path_factory.mktemp("kernel-tmp")))
    if not _resolves_here():
        # a kernelspec elsewhere (e.g. ~/.local/share/jupyter) points at another Python: pin ours
        root = tmp_path_factory.mktemp("jupyter")
        kdir = root / "kernels" / KERNEL
        kdir.mkdir(parents=True)
        (kdir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (bayesscale tests)", "language": "python"}))
        mp.setenv("JUPYTER_PATH", os.pathsep.join([str(root), os.environ.get("JUPYTER_PATH", "")]).rstrip(os.pathsep))
    assert _resolves_here(), (f"the {KERNEL!r} kernel does not start {sys.executable}; "
                              "install ipykernel into this environment")
    yield
    mp.undo()


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert names >= {"01_chinchilla_reanalysis.ipynb", "02_budget_decision.ipynb",
                     "03_isoflop_vs_parametric.ipynb", "04_many_fits_calibration.ipynb"}
    readme = (NOTEBOOK_DIR / "README.md").read_text()
    assert all(name in readme for name in names), "notebooks/README.md should list every notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert code[0].source.startswith("import os\nFAST = "), "the first code cell must hold the settings"
    for i, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {i} was committed with outputs; clear them"
        assert cell.execution_count is None, f"code cell {i} was committed with an execution count"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, kernel_env):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:  # the message holds the cell and the traceback
        pytest.fail(f"{path.name} failed:\n{err}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
    # every code cell ran
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")
