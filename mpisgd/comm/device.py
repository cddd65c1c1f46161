"""Rank -> accelerator mapping: one rank per GPU, by node-local rank."""


def gpu_count() -> int:
    """Number of CUDA devices visible to this process (0 without torch/cupy or GPUs)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:
        pass
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # cupy missing, or no driver
        return 0


def device_index(local_rank: int, n_gpus: int):
    """GPU index for a node-local rank (``local_rank % n_gpus``), None without GPUs."""
    if n_gpus <= 0:
        return None
    return local_rank % n_gpus


def select_device(comm, prefer: str = "auto") -> str:
    """Pick and activate this rank's device: ``"cuda:K"`` or ``"cpu"``.

    ``prefer`` is ``"auto"`` (a GPU when there is one), ``"cpu"`` or ``"cuda"``
    (an error when no GPU is visible). ``comm`` is a
    :class:`~mpisgd.comm.Communicator`; its node-local rank picks the GPU.
    """
    if prefer == "cpu":
        return "cpu"
    index = device_index(comm.local_rank, gpu_count())
    if index is None:
        if prefer == "cuda":
            raise RuntimeError("--device cuda was asked for, but no CUDA device is visible")
        return "cpu"
    try:
        import torch

        torch.cuda.set_device(index)
    except ImportError:
        import cupy

        cupy.cuda.Device(index).use()
    return f"cuda:{index}"
