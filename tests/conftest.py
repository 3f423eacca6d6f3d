"""Fixtures shared by test modules."""

import pytest


@pytest.fixture
def one_torch_thread():
    """PyTorch on one thread: on a shared 2-core machine two threads can be 10x slower."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
