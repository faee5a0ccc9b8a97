"""results/published_effects.yaml (issue 28): the papers' and the upstream reproductions' effects beside ours.

Each entry must name a claim exactly as this run's results/quick/<notebook>.json words it, and each published
value must be what its ``computed`` arithmetic gives, so that a number cannot drift from its derivation.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published_effects.yaml"
KINDS = ("paper", "upstream")
ENTRY_KEYS = {"notebook", "claim", "claim_text", "effect", "note", *KINDS}
VALUE_KEYS = {"value", "computed", "source"}

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([-+*/]))")


def leading_arithmetic(computed: str) -> str:
    """The part of a ``computed`` text before its first parenthesis: the arithmetic that gives the value."""
    return computed.split("(", 1)[0].strip()


def _tokens(expression: str) -> list[str]:
    tokens, pos = [], 0
    expression = expression.rstrip()
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise ValueError(f"not plain arithmetic at {expression[pos:]!r}")
        tokens.append(match.group(1) or match.group(2))
        pos = match.end()
    if not tokens:
        raise ValueError("empty expression")
    return tokens


def evaluate(expression: str) -> float:
    """Numbers joined by + - * / (usual precedence, an optional leading sign, no parentheses); nothing else."""
    tokens = _tokens(expression)
    sign = 1.0
    if tokens[0] in "+-":
        sign = -1.0 if tokens.pop(0) == "-" else 1.0
    if len(tokens) % 2 == 0 or any(t in "+-*/" for t in tokens[::2]) or any(t not in "+-*/" for t in tokens[1::2]):
        raise ValueError(f"numbers and operators must alternate: {expression!r}")
    total, term = 0.0, sign * float(tokens[0])
    for op, number in zip(tokens[1::2], tokens[2::2], strict=True):
        value = float(number)
        if op == "*":
            term *= value
        elif op == "/":
            term /= value
        else:
            total += term
            term = value if op == "+" else -value
    return total + term


def entries() -> list[dict]:
    return yaml.safe_load(PUBLISHED.read_text(encoding="utf-8"))


def quick_claims(notebook: str) -> list[str]:
    items = json.loads((ROOT / "results" / "quick" / f"{notebook}.json").read_text(encoding="utf-8"))
    return [item["claim"] for item in items["claims"]["items"]]


def published_values(entry: dict) -> list[tuple[str, dict]]:
    return [(kind, entry[kind]) for kind in KINDS if kind in entry]


def entry_id(entry: dict) -> str:
    return f"{entry['notebook']}#{entry['claim']}"


ENTRIES = entries()


# ------------------------------------------------------------------------------------------ the evaluator


@pytest.mark.parametrize(("expression", "expected"), [
    ("0.7721 - 0.7684", 0.0037),
    ("146 / 10000 - 74 / 10000", 0.0072),
    ("0.773 / 2 + 0.720 / 2 - 0.766 / 2 - 0.710 / 2", 0.0085),
    ("-1 + 2 * 3", 5.0),
    ("13 / 18 - 5 / 19", 13 / 18 - 5 / 19),
    ("1e-3 * 2", 0.002),
])
def test_evaluate(expression, expected):
    assert evaluate(expression) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("expression", ["", "0.7 -", "__import__('os')", "2 ** 3", "1 + + 2", "abs(1)", "0.5 x"])
def test_evaluate_refuses_anything_but_plain_arithmetic(expression):
    with pytest.raises(ValueError):
        evaluate(expression)


def test_leading_arithmetic_stops_at_the_first_parenthesis():
    assert leading_arithmetic("0.738 - 0.750 (Cars; Aircraft 0.707 - 0.699 = 0.008)") == "0.738 - 0.750"


# ---------------------------------------------------------------------------------------------- the file


def test_file_is_a_list_of_entries_one_per_claim():
    assert isinstance(ENTRIES, list) and ENTRIES
    assert all(isinstance(e, dict) for e in ENTRIES)
    ids = [entry_id(e) for e in ENTRIES]
    assert len(ids) == len(set(ids)), "one entry per (notebook, claim)"


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_entry_names_a_claim_of_this_run(entry):
    assert set(entry) <= ENTRY_KEYS, f"unknown keys {set(entry) - ENTRY_KEYS}"
    assert (ROOT / "notebooks" / f"{entry['notebook']}.py").is_file()
    claims = quick_claims(entry["notebook"])
    assert isinstance(entry["claim"], int) and not isinstance(entry["claim"], bool)
    assert 1 <= entry["claim"] <= len(claims)
    assert entry["claim_text"] == claims[entry["claim"] - 1]
    assert isinstance(entry["effect"], str) and entry["effect"].strip()


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_every_published_value_is_sourced_and_derived(entry):
    values = published_values(entry)
    assert values, "an entry needs a paper or an upstream value"
    for kind, published in values:
        assert set(published) == VALUE_KEYS, f"{kind}: keys {sorted(published)}"
        value = published["value"]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{kind}: {value!r}"
        assert math.isfinite(value), f"{kind}: {value!r}"
        assert isinstance(published["source"], str) and published["source"].strip(), f"{kind}: no source"
        computed = evaluate(leading_arithmetic(published["computed"]))
        assert computed == pytest.approx(value, abs=1e-9), f"{kind}: {published['computed']!r} gives {computed}"
