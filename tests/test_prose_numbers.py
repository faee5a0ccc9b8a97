"""Numbers in the notebooks' Markdown agree with the stored run (``results/quick/<notebook>.json``).

A number a notebook's prose quotes either comes from the run (printed by a code cell, or a Markdown output rendered
from the run's values) or carries a marker, an HTML comment right after it (invisible in Jupyter and on the site):

``0.737<!-- m: headline_metrics["segmentation|KA student"] -->``
    a number of this run. The expression is evaluated over the ``metrics`` of the stored quick run
    (``results/quick/<notebook>.json``, written by ``make outputs``): a top-level key is a name, ``.key`` or
    ``["key"]`` goes inside, ``[0]`` indexes a list, ``pick(records, field=value, ...)`` chooses the one record of a
    list that matches; arithmetic, ``abs``, ``min``, ``max``, ``sum``, ``len`` are allowed. The quoted number must
    equal the expression rounded to the decimals quoted (a percentage is written as ``100 * ...``).
``91 %<!-- paper -->``
    a number quoted from the paper (or another cited work), kept as it is.
``0.9<!-- fixed -->``
    a constant of the notebook's design (a threshold, a parameter's value, chance level), not a measurement.

A line ``<!-- numbers: paper -->`` or ``<!-- numbers: fixed -->`` covers every number of the paragraph or table that
follows it (up to the next blank line).

What must be marked: every decimal number (``0.74``, ``.11``) and every percentage (``8 %``) of a Markdown cell,
outside math (``$...$``), inline code, code blocks, links' targets and HTML comments. Integers (counts, epochs,
sizes, years) need no marker. Numbers of earlier configurations do not belong in a notebook: they are history, in
``docs/decisions.md``, marked there as the numbers of their time.

Run ``python tests/test_prose_numbers.py [NN ...]`` to list the unmarked and disagreeing numbers of notebooks.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RESULTS = ROOT / "results" / "quick"

# a number: optional minus (ASCII or U+2212), digits with optional thousands commas, optional decimals;
# or a bare decimal such as .11
NUMBER = re.compile(r"(?<![\w.\-−])([-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-−]?\.\d+)(?![\w.]*\w)")
MARKER = re.compile(r"<!--\s*(m:(?P<expr>.*?)|(?P<kind>paper|fixed))\s*-->", re.S)
BLOCK_MARKER = re.compile(r"^\s*<!--\s*numbers:\s*(paper|fixed)\s*-->\s*$")
PERCENT_AFTER = re.compile(r"^\s?%")


def _mask(text: str, pattern: str, flags: int = 0) -> str:
    """``text`` with every match of ``pattern`` replaced by spaces (offsets are kept)."""
    return re.sub(pattern, lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=flags)


def _masked(source: str) -> str:
    """The Markdown with math, code, link targets and plain HTML comments blanked (markers are kept)."""
    text = _mask(source, r"```.*?```", re.S)
    text = _mask(text, r"\$\$.*?\$\$", re.S)
    text = _mask(text, r"(?<!\\)\$[^$]+?(?<!\\)\$")
    text = _mask(text, r"`[^`\n]*`")
    text = _mask(text, r"\]\([^)\s]*\)")  # [text](target)
    text = _mask(text, r"https?://\S+")
    text = _mask(text, r"arXiv:\d+\.\d+")
    text = _mask(text, r"\b10\.\d{4,9}/\S+")  # a DOI
    text = _mask(text, r"<!--(?!\s*(?:m:|paper\s*-->|fixed\s*-->|numbers:)).*?-->", re.S)
    return text


class _Node:
    """Read-only view of the stored metrics for marker expressions: ``a.b``, ``a["b c"]``, ``a[0]``."""

    def __init__(self, value):
        self._value = value

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, key):
        value = self._value
        if isinstance(value, dict) and key not in value and str(key) in value:
            key = str(key)
        return _wrap(value[key])

    def __len__(self):
        return len(self._value)

    def __iter__(self):
        return (_wrap(v) for v in self._value)


def _wrap(value):
    return _Node(value) if isinstance(value, (dict, list)) else value


def _pick(records, **fields):
    """The one record of a list of dicts whose fields equal ``fields``."""
    found = [r for r in records._value if all(r.get(k) == v for k, v in fields.items())]
    if len(found) != 1:
        raise KeyError(f"pick({fields}) matched {len(found)} records, not one")
    return _wrap(found[0])


def evaluate(expr: str, metrics: dict) -> float:
    """The value of one marker expression over ``metrics``."""
    names = {key: _wrap(value) for key, value in metrics.items()}
    names.update(pick=_pick, abs=abs, min=min, max=max, sum=sum, len=len)
    value = eval(compile(expr.strip(), "<marker>", "eval"), {"__builtins__": {}, **names})  # noqa: S307
    if isinstance(value, _Node):
        raise TypeError(f"{expr.strip()!r} is a {type(value._value).__name__}, not a number")
    return float(value)


def _as_float(text: str) -> float:
    return float(text.replace("−", "-").replace(",", ""))


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def problems(source: str, metrics: dict | None) -> list[str]:
    """What is wrong with the numbers of one Markdown cell: unmarked numbers, markers that disagree with ``metrics``."""
    text = _masked(source)
    out: list[str] = []
    covered = False  # inside a paragraph or table after a block marker
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if BLOCK_MARKER.match(line):
            covered = True
            offset += len(line)
            continue
        if not stripped:
            covered = False
        markers = list(MARKER.finditer(line))
        numbers = [n for n in NUMBER.finditer(line) if not any(m.start() <= n.start() < m.end() for m in markers)]
        # the number a marker applies to: the last one before it (after the previous marker)
        marked: set[int] = set()
        previous_end = 0
        for marker in markers:
            before = [n for n in numbers if previous_end <= n.start() and n.end() <= marker.start()]
            previous_end = marker.end()
            if not before:
                out.append(f"marker without a number before it: {marker.group(0)!r} in {stripped[:100]!r}")
                continue
            number = before[-1]
            marked.add(number.start())
            if marker.group("expr") is None:
                continue
            if metrics is None:
                out.append(f"{number.group(1)}: no stored metrics to check {marker.group(0)!r} against")
                continue
            try:
                value = evaluate(marker.group("expr"), metrics)
            except Exception as error:  # noqa: BLE001 - reported as a problem of the marker
                out.append(f"{number.group(1)}: cannot evaluate {marker.group('expr').strip()!r}: {error!r}")
                continue
            shown = _as_float(number.group(1))
            if not math.isfinite(value) or abs(shown - value) > 0.5 * 10 ** -_decimals(number.group(1)) + 1e-9:
                out.append(f"{number.group(1)} in the prose, but {marker.group('expr').strip()} = {value!r} "
                           f"in the stored run: {stripped[:100]!r}")
        if not covered:
            for number in numbers:
                if number.start() in marked:
                    continue
                is_decimal = "." in number.group(1)
                is_percent = bool(PERCENT_AFTER.match(line[number.end():]))
                if is_decimal or is_percent:
                    out.append(f"unmarked number {number.group(1)}{'%' if is_percent else ''} in "
                               f"{source[offset:offset + len(line)].strip()[:120]!r}")
        offset += len(line)
    return out


def notebook_problems(path: Path) -> list[str]:
    """Every problem of one notebook's Markdown cells, prefixed with the cell's index."""
    stored = RESULTS / f"{path.stem}.json"
    metrics = json.loads(stored.read_text())["metrics"] if stored.exists() else None
    nb = nbformat.read(path, as_version=4)
    return [f"cell {i}: {p}" for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
            for p in problems(cell.source, metrics)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_numbers_are_marked_and_agree_with_the_stored_run(path):
    found = notebook_problems(path)
    assert not found, f"{path.name}:\n" + "\n".join(found)


# ---- the convention itself, on small made-up cells


METRICS = {"acc": {"student": 0.7369, "per_seed": [0.91, 0.93]}, "scores": [{"model": "a", "value": 0.5},
                                                                          {"model": "b", "value": 0.25}],
           "pair|x": 1.5}


@pytest.mark.parametrize("source", [
    "The student reaches 73.7 %<!-- m: 100 * acc.student --> here.",
    "mIoU 0.737<!-- m: acc.student -->, seed 1: 0.93<!-- m: acc.per_seed[1] -->.",
    "b is 0.25<!-- m: pick(scores, model=\"b\").value --> and 1.5<!-- m: METRICS_PAIR -->".replace(
        "METRICS_PAIR", 'acc.student * 0 + 1.5'),
    "The paper reports 91 %<!-- paper --> with α = 0.9<!-- fixed -->.",
    "Math $0.5 x$ and code `lr=0.01` and [link](https://x.org/1.5) and 2048 images, 8 epochs, CVPR 2019.",
    "<!-- numbers: paper -->\n| model | acc |\n|---|---|\n| A | 91.2 % |\n\nAfter: 3 epochs.",
    "Difference −0.9<!-- m: -100 * (acc.per_seed[1] - acc.per_seed[0]) + 1.1 --> points.",
])
def test_marked_numbers_that_agree_pass(source):
    assert problems(source, METRICS) == []


@pytest.mark.parametrize(("source", "message"), [
    ("The student reaches 73.8 %<!-- m: 100 * acc.student -->.", "73.8 in the prose"),
    ("An unmarked 0.74 here.", "unmarked number 0.74"),
    ("An unmarked 8 % here.", "unmarked number 8%"),
    ("<!-- numbers: paper -->\n| A | 91.2 % |\n\nThen 0.5 unmarked.", "unmarked number 0.5"),
    ("Bad key 0.5<!-- m: acc.teacher -->.", "cannot evaluate"),
    ("Not a number 0.5<!-- m: acc -->.", "cannot evaluate"),
    ("A marker <!-- paper --> alone.", "marker without a number"),
])
def test_wrong_or_unmarked_numbers_fail(source, message):
    found = problems(source, METRICS)
    assert found and message in found[0], found


def test_every_notebook_has_stored_metrics():
    assert {p.stem for p in NOTEBOOKS} <= {p.stem for p in RESULTS.glob("*.json")}


if __name__ == "__main__":
    chosen = [p for p in NOTEBOOKS if not sys.argv[1:] or p.stem[:2] in sys.argv[1:]]
    for notebook in chosen:
        for problem in notebook_problems(notebook):
            print(f"{notebook.stem[:2]} {problem}")
