"""The pins in constraints.txt and environment.yml agree, and the required ones are there."""

from __future__ import annotations

import re

import yaml

from kae_utils.env import repo_root

ROOT = repo_root()
REQUIRED = ["torch", "torchvision", "jupyterlab", "ipykernel", "ipywidgets", "matplotlib", "seaborn",
            "papermill", "nbval", "pytest", "scikit-learn", "tqdm", "PyYAML", "distributed", "dask-jobqueue"]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt line is not an exact pin: {line!r}"
        pins[_norm(match[1])] = match[2]
    return pins


def environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for spec in pip_section:
        match = PIN.match(spec)
        assert match, f"environment.yml pip entry is not an exact pin: {spec!r}"
        pins[_norm(match[1])] = match[2]
    return pins


def test_required_pins_and_torch_versions():
    pins = constraints()
    for name in REQUIRED:
        assert _norm(name) in pins, f"{name} is not pinned in constraints.txt"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_environment_yml_agrees_with_constraints():
    pins, env = constraints(), environment_pins()
    for name in REQUIRED:
        assert _norm(name) in env, f"{name} is missing from environment.yml"
    mismatched = {n: (v, pins.get(n)) for n, v in env.items() if pins.get(n) != v}
    assert not mismatched, f"environment.yml vs constraints.txt: {mismatched}"


def test_environment_yml_python_version():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]


def test_ci_calls_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", script, re.M)


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make run", "make test"]


def test_no_source_file_is_git_ignored():
    """A broad ignore pattern (such as `data/`) once hid kae_utils/data/ from git: fresh clones broke."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    sources = [str(p.relative_to(ROOT)) for d in ("kae_utils", "kae_tools", "tests", "notebooks")
               for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".ipynb", ".cfg") and "__pycache__" not in p.parts]
    assert sources
    ignored = subprocess.run(["git", "check-ignore", *sources], cwd=ROOT, capture_output=True, text=True).stdout
    assert not ignored.strip(), f"git ignores these source files: {ignored.split()}"


def test_dask_is_an_optional_extra_that_the_tests_install():
    """`--dask`/`--slurm` need the `cluster` extra; `dev` (what `make setup` installs) carries it too, so the
    Dask tests run wherever `make test` does, while a plain install stays without Dask."""
    import pytest

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(specs):
        return {_norm(re.split(r"[<>=!~ \[;]", spec, maxsplit=1)[0]) for spec in specs}

    dask = {"distributed", "dask-jobqueue"}
    assert dask <= names(project["optional-dependencies"]["cluster"])
    assert dask <= names(project["optional-dependencies"]["dev"])
    assert not dask & names(project["dependencies"])


def test_both_packages_and_the_kae_command_are_installed():
    """`pip install -e .` installs kae_utils (the notebooks' library) and kae_tools (the repository's tools),
    and the console command `kae` (kae_tools.__main__:main)."""
    import pytest

    tomllib = pytest.importorskip("tomllib")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["tool"]["setuptools"]["packages"]["find"]["include"] == ["kae_utils*", "kae_tools*"]
    assert data["project"]["scripts"] == {"kae": "kae_tools.__main__:main"}


def _imports(path):
    """Every module a Python file imports (top level and inside functions), as dotted names."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module(path, root=ROOT):
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_kae_utils_never_imports_kae_tools():
    offenders = sorted(
        f"{p.relative_to(ROOT)} imports {name}"
        for p in (ROOT / "kae_utils").rglob("*.py")
        for name in _imports(p)
        if name == "kae_tools" or name.startswith("kae_tools.")
    )
    assert not offenders, offenders


def test_kae_tools_has_no_import_circle():
    """The modules of kae_tools import each other along one direction only (any import, even inside a
    function, counts: a function-local import must not hide a circle)."""
    files = [p for p in (ROOT / "kae_tools").rglob("*.py") if "__pycache__" not in p.parts]
    modules = {_module(p): p for p in files}
    graph = {
        name: sorted({m for m in _imports(path) if m in modules and m != name and not name.startswith(m + ".")}
                     - {name})
        for name, path in modules.items()
    }
    done, stack = set(), []

    def visit(name):
        if name in stack:
            raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(name):], name]))
        if name in done:
            return
        stack.append(name)
        for target in graph[name]:
            visit(target)
        stack.pop()
        done.add(name)

    for name in graph:
        visit(name)
    assert "kae_tools.runner.cli" in graph and graph["kae_tools.runner.cli"]
