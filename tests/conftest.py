"""Shared fixtures of the unit tests (the notebooks' nbval plugin is tests/nbval_plugin.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models only: on a small, busy machine torch's thread pool makes each op ~1000x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def float32_numerics():
    """Golden values are float32 and NCHW whatever this CPU runs natively; tests of bf16 and channels-last
    ask for them (``kae_utils.training.numerics.using``)."""
    from kae_utils.training.numerics import using

    with using("fp32", "cpu", channels_last=False):
        yield


@pytest.fixture()
def agg_backend():
    """Headless matplotlib for plotting tests; every figure closed afterwards. Yields pyplot."""
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    plt.switch_backend("Agg")
    yield plt
    plt.close("all")
    if backend.lower() != "agg":
        plt.switch_backend(backend)
