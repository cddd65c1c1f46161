"""The communication core under real mpiexec, and its MPI-free parts in process."""


import numpy as np
import pytest
import torch
from mpirun import assert_ok, run_prog

from mpisgd.comm import resolve_cuda_aware
from mpisgd.flat import FlatParams


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_communicator_device_staging_stats_agreement(ranks):
    assert_ok(run_prog(ranks, "comm_backends.py"))


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_algorithm_progress_tests_requests_in_flight(ranks):
    assert_ok(run_prog(ranks, "in_flight.py"))


def test_cuda_aware_is_opt_in(monkeypatch):
    monkeypatch.delenv("MPISGD_CUDA_AWARE", raising=False)
    assert resolve_cuda_aware() is False
    monkeypatch.setenv("MPISGD_CUDA_AWARE", "1")
    assert resolve_cuda_aware() is True
    assert resolve_cuda_aware(False) is False  # the option wins over the variable


def test_flat_params_are_views_without_copies():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    flat = FlatParams.from_parameters(model.parameters())
    assert flat.numel == sum(p.numel() for p in before)
    for p, old in zip(model.parameters(), before):
        assert torch.equal(p, old)
        assert p.data_ptr() >= flat.params.data_ptr()
    flat.params[:] = 1.0  # writing the flat buffer changes the model
    assert all(bool((p == 1).all()) for p in model.parameters())
    model(torch.ones(1, 3)).sum().backward()  # gradients land in the flat buffer
    assert float(flat.grads.abs().sum()) > 0
    model.zero_grad()  # torch sets .grad to None ...
    model(torch.ones(1, 3)).sum().backward()
    for index in range(len(flat.slots)):
        flat.adopt_grad(index)  # ... and mpisgd takes the new gradient back into the buffer
    assert all(p.grad.data_ptr() == flat.grad_view(i).data_ptr() for i, p in enumerate(model.parameters()))


def test_flat_params_reject_bad_input():
    with pytest.raises(ValueError):
        FlatParams(np.zeros((2, 2)))
    with pytest.raises(ValueError):
        FlatParams.from_parameters([torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2).double())])
    with pytest.raises(TypeError):
        FlatParams([1.0, 2.0])
