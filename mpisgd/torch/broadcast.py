"""broadcast_module: make every rank's copy of a torch module equal to the root's, buffers included."""

import torch

from ..comm import Communicator


def broadcast_module(model: torch.nn.Module, comm=None, root: int = 0) -> None:
    """Copy ``root``'s parameters *and* buffers (BatchNorm running statistics) into every rank's ``model``.

    In place, one ``Bcast`` per tensor. The ranks first check that their
    modules have the same tensors (names, shapes, dtypes): a mismatch is an
    :class:`~mpisgd.errors.AgreementError` on every rank, not a hang.
    ``comm``: an mpi4py communicator or :class:`~mpisgd.comm.Communicator`
    (default ``COMM_WORLD``). The distributed optimizers broadcast the
    parameters at construction (``init="broadcast"``) but not the buffers.
    """
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    owned = not isinstance(comm, Communicator)
    comm = Communicator(comm) if owned else comm
    try:
        comm.check_agreement([[name, list(t.shape), str(t.dtype)] for name, t in tensors], what="module's tensors")
        with torch.no_grad():
            for _, tensor in tensors:
                data = tensor.detach()
                buffer = data if data.is_contiguous() else data.contiguous()
                comm.bcast(buffer, root=root)
                if buffer is not data:
                    data.copy_(buffer)
    finally:
        if owned:
            comm.free()
