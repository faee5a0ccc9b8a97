"""The code runs the same on a GPU as on the CPU, checked where a CPU can check it (issue 26).

No GPU is lent to CI, and a CUDA/CPU tensor mix is the crash a CPU run never shows. So the source of ``kae_utils``
and of every notebook is read (its syntax tree, not its text) for the patterns that break on a GPU only:

* a tensor made on the CPU (``torch.zeros``, ``torch.tensor``, ``torch.arange`` ... without ``device=``) inside
  code that runs on the model's device: a function or loop that moves things to a device, a loss, a training
  step, a ``forward``, a prediction or attribution helper;
* ``non_blocking=True`` or ``pin_memory=True`` written unconditionally (only a CUDA transfer may ask for them);
* ``.cuda()`` (the device comes from ``DEVICE``: ``.to(device)``);
* ``.numpy()`` of something moved to the device without ``.cpu()`` in between;

and every notebook resolves its ``DEVICE`` (``setup_notebook``) before it loads data or models, so that
``DEVICE="cuda"`` without a GPU fails at once with a clear message (run below on a notebook).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "kae_utils").rglob("*.py"), *(ROOT / "notebooks").glob("[0-9][0-9]_*.py")])
FACTORIES = {"zeros", "ones", "full", "empty", "tensor", "as_tensor", "arange", "eye", "linspace", "rand", "randn",
             "randint", "randperm"}
#: Names of functions that run on the model's device whatever their body says.
DEVICE_WORDS = ("loss", "step", "forward", "signal", "predict", "features", "attribut")
#: Tensors made on the CPU on purpose in device-facing code: (file, code), why.
ALLOWED = {
    ("kae_utils/methods/amalgamation.py", "torch.as_tensor(classes)"): "indexes and compares CPU tensors (.cpu() above)",
    ("kae_utils/data/subsets.py", "torch.full((max(self.classes) + 1,), -1, dtype=torch.int64)"):
        "a lookup table, moved with .to(global_labels.device) on use",
    ("kae_utils/data/subsets.py", "torch.arange(len(self.classes))"): "fills that CPU lookup table",
    ("notebooks/04_student_becoming_master.py", "torch.randint(len(points[t]), (1,), generator=draw)"):
        "a Python int drawn from a CPU generator",
}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _device_facing(node: ast.AST) -> bool:
    if isinstance(node, ast.FunctionDef):
        if any(word in node.name for word in DEVICE_WORDS):
            return True
        if any("float32_loss" in ast.unparse(d) for d in node.decorator_list):
            return True
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.For, ast.While, ast.Lambda)):
        return False
    return any((isinstance(n, ast.Name) and n.id in ("device", "dev"))
               or (isinstance(n, ast.Attribute) and n.attr in ("device", "to", "cuda")) for n in ast.walk(node))


def cpu_tensors_on_device_paths(source: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every torch factory call without ``device=`` inside device-facing code."""
    found = []

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            here = inside or _device_facing(child)
            if (here and isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr in FACTORIES and isinstance(child.func.value, ast.Name)
                    and child.func.value.id == "torch" and not any(k.arg == "device" for k in child.keywords)):
                found.append((child.lineno, ast.unparse(child)))
            visit(child, here)

    visit(ast.parse(source), False)
    return found


def unconditional_transfers(source: str) -> list[tuple[int, str]]:
    """``non_blocking=True`` / ``pin_memory=True`` as constants, and ``.cuda()`` calls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            for k in node.keywords:
                if k.arg in ("non_blocking", "pin_memory") and isinstance(k.value, ast.Constant) and k.value.value:
                    found.append((node.lineno, ast.unparse(node)))
            if isinstance(node.func, ast.Attribute) and node.func.attr == "cuda":
                found.append((node.lineno, ast.unparse(node)))
    return found


def _chain(node: ast.AST) -> list[ast.Call]:
    """The calls of a method chain ``a.b(...).c(...)``, outermost first."""
    out = []
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Call):
            out.append(node)
            node = node.func
        else:
            node = node.value
    return out


def _moves_to_device(call: ast.Call) -> bool:
    name = getattr(call.func, "attr", "")
    return name == "cuda" or (name == "to" and bool(call.args) and "cpu" not in ast.unparse(call.args[0]))


def numpy_of_device_tensors(source: str) -> list[tuple[int, str]]:
    """``.numpy()`` of a tensor moved to the device (``x.to(device)``, or a model applied to one) without a
    ``.cpu()`` after the move."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "numpy":
            for call in _chain(node.func.value):
                if getattr(call.func, "attr", "") == "cpu" or (getattr(call.func, "attr", "") == "to"
                                                                and not _moves_to_device(call)):
                    break
                inner = [n for a in [*call.args, *(k.value for k in call.keywords)] for n in ast.walk(a)
                         if isinstance(n, ast.Call)]
                if _moves_to_device(call) or any(_moves_to_device(n) for n in inner):
                    found.append((node.lineno, ast.unparse(node)))
                    break
    return found


# ------------------------------------------------------------------------------- the checks can fail


def test_the_checks_catch_what_they_are_for() -> None:
    code = '''
def kd_loss(student, teacher):
    weights = torch.tensor([1.0, 2.0])
    return (weights * (student - teacher)).sum()

def train(model, x, device):
    for xb in x.split(8):
        noise = torch.randn(xb.shape)
        model(xb.to(device) + noise)
    ok = torch.zeros(3, device=device)
    batch = x.to(device, non_blocking=True)
    y = model.cuda()(x)
    z = model(x.to(device)).detach().numpy()
    fine = model(x.to(device)).cpu().numpy()
'''
    assert [line for line, _ in cpu_tensors_on_device_paths(code)] == [3, 8]
    assert [line for line, _ in unconditional_transfers(code)] == [11, 12]
    assert [line for line, _ in numpy_of_device_tensors(code)] == [13]
    clean = "def f(x, device):\n    return x.to(device, non_blocking=device.type == 'cuda')\n"
    assert unconditional_transfers(clean) == [] and cpu_tensors_on_device_paths(clean) == []


# --------------------------------------------------------------------------- the library and notebooks


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_cpu_tensor_on_a_device_path(path: Path) -> None:
    found = [(line, code) for line, code in cpu_tensors_on_device_paths(path.read_text())
             if (_rel(path), code) not in ALLOWED]
    assert not found, (f"{_rel(path)}: tensors made on the CPU in code that runs on the model's device "
                       f"(pass device=..., or *_like / x.new_*): {found}")


def test_the_allowed_cpu_tensors_are_still_there() -> None:
    """An entry of ALLOWED whose code is gone is removed, so the list stays the list of real exceptions."""
    found = {(_rel(p), code) for p in SOURCES for _, code in cpu_tensors_on_device_paths(p.read_text())}
    assert set(ALLOWED) <= found, sorted(set(ALLOWED) - found)


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_transfers_are_asynchronous_only_on_cuda(path: Path) -> None:
    source = path.read_text()
    assert unconditional_transfers(source) == [], f"{_rel(path)}: non_blocking/pin_memory only when on CUDA; no .cuda()"
    assert numpy_of_device_tensors(source) == [], f"{_rel(path)}: .numpy() of a device tensor needs .cpu() first"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_notebooks_resolve_the_device_before_any_work(path: Path) -> None:
    """``setup_notebook(SEED, DEVICE)`` comes before the first data set, model or training: DEVICE="cuda" without a
    GPU stops there, before any minute is spent."""
    lines = path.read_text().splitlines()
    first = {word: next((i for i, line in enumerate(lines) if word in line and not line.lstrip().startswith("#")),
                        None)
             for word in ("setup_notebook(SEED, DEVICE", "Trainer(", "zoo.obtain(", "zoo.load(", "load_dataset(",
                          "classification_task(", "target_sets(", "render_scenes(")}
    setup = first.pop("setup_notebook(SEED, DEVICE")
    assert setup is not None, f"{path.name} never calls setup_notebook(SEED, DEVICE)"
    late = {word: i + 1 for word, i in first.items() if i is not None and i < setup}
    assert not late, f"{path.name}: {late} before setup_notebook (line {setup + 1})"


def test_trainer_moves_batches_asynchronously_only_on_cuda() -> None:
    from kae_utils.training.predict import to_device

    x = torch.ones(2, 3)
    assert to_device((x, 1), torch.device("cpu"))[0] is x, "a CPU batch stays where it is"


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_a_gpu_fails_at_once(tmp_path: Path) -> None:
    """A notebook's full profile asked to run on CUDA where there is none stops in its set-up cell, with the
    message that says what to do, before it loads any data or model."""
    import json

    from kae_tools.notebooks.catalog import find_notebooks
    from kae_tools.runner.schedule import run_notebooks

    [result] = run_notebooks(find_notebooks(["01"]), profile="full", parameters={"DEVICE": "cuda"}, out=tmp_path,
                             timeout=300, fresh_cache=True, threads=1, log=lambda line: None)
    assert result.status == "failed"
    assert "DEVICE='cuda' was asked for but torch sees no CUDA device" in (result.error or "")
    cells = json.loads(Path(result.output_path).read_text())["cells"]
    ran = [c for c in cells if c["cell_type"] == "code" and c.get("execution_count")]
    assert "setup_notebook(SEED, DEVICE)" in "".join(ran[-1]["source"]), "it stopped in the set-up cell"
    assert not any("zoo.obtain(" in "".join(c["source"]) for c in ran), "no model was loaded"
