"""kae_utils.core.params.check_common_parameters: the checks every notebook's validation cell shares."""

from __future__ import annotations

import pytest

from kae_utils.core.params import PRECISIONS, TEACHER_SOURCES, check_common_parameters

GOOD = dict(profile="quick", device="auto", seed=0)


def test_accepts_good_values_and_returns_none():
    assert check_common_parameters("full", "cpu", 3) is None
    assert check_common_parameters(**GOOD, precision="fp32", dataset="digits", datasets=("digits", "shapes"),
                                   teachers="train") is None


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(profile="fast"), "PROFILE must be one of 'quick', 'full'; got 'fast'"),
    (dict(device="gpu"), "DEVICE must be one of 'auto', 'cpu', 'cuda'; got 'gpu'"),
    (dict(seed=-1), "SEED must be an integer >= 0; got -1"),
    (dict(seed=1.0), "SEED must be an integer >= 0; got 1.0"),
    (dict(seed=True), "SEED must be an integer >= 0; got True"),
    (dict(precision="fp16"), "PRECISION must be one of 'auto', 'fp32', 'bf16'; got 'fp16'"),
    (dict(precision=None), "PRECISION must be one of 'auto', 'fp32', 'bf16'; got None"),  # None is a value here
    (dict(dataset="imagenet", datasets=("scenes",)), "DATASET must be one of 'scenes'; got 'imagenet'"),
    (dict(teachers="download"), "TEACHERS must be one of 'zoo', 'train'; got 'download'"),
])
def test_each_bad_value_is_named_with_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError) as info:
        check_common_parameters(**{**GOOD, **kwargs})
    assert str(info.value) == message


def test_order_profile_device_precision_dataset_teachers_seed():
    bad = dict(profile="x", device="x", seed=-1, precision="x", dataset="x", datasets=("d",), teachers="x")
    for name in ("PROFILE", "DEVICE", "PRECISION", "DATASET", "TEACHERS", "SEED"):
        with pytest.raises(ValueError, match=f"^{name} must"):
            check_common_parameters(**bad)
        key = name.lower()
        bad[key] = {"profile": "quick", "device": "cpu", "precision": "auto", "dataset": "d", "teachers": "zoo",
                    "seed": 0}[key]
    check_common_parameters(**bad)


def test_absent_parameters_are_not_checked():
    # a notebook without PRECISION, DATASET or TEACHERS passes only the three it has
    check_common_parameters("quick", "cuda", 7)


def test_dataset_and_its_choices_go_together():
    with pytest.raises(TypeError, match="go together"):
        check_common_parameters(**GOOD, dataset="digits")
    with pytest.raises(TypeError, match="go together"):
        check_common_parameters(**GOOD, datasets=("digits",))


def test_allowed_values_are_the_ones_the_library_uses():
    from kae_utils.training import numerics
    from kae_utils.zoo import entries

    assert PRECISIONS == ("auto", "fp32", "bf16") and numerics.PRECISIONS is PRECISIONS
    assert TEACHER_SOURCES == ("zoo", "train") and entries.TEACHER_SOURCES is TEACHER_SOURCES
