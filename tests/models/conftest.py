"""Tests of my package run with one torch thread."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks: one thread is faster, and on a shared 2-core machine far more predictable."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
