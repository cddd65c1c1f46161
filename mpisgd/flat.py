"""FlatParams: a model's parameters and gradients as views into two contiguous buffers.

Every mpisgd algorithm works on one flat 1-D parameter vector (and its
gradient), so a collective is one MPI call on one buffer and no copies are
made. A torch model is mapped onto such buffers in place: after
``FlatParams.from_parameters(model.parameters())`` each parameter's
``.data`` and ``.grad`` are views into ``flat.params`` and ``flat.grads``.

Example with numpy (no torch needed; the arrays are used in place)::

    >>> import numpy
    >>> x, g = numpy.zeros(100), numpy.zeros(100)
    >>> flat = FlatParams(x, g)
    >>> flat.params is x, flat.numel, flat.backend.name
    (True, 100, 'numpy')
    >>> flat.describe()
    {'dtype': 'float64', 'numel': 100, 'shapes': [['params', [100]]]}
"""

from typing import NamedTuple

from .arrays import backend_for


class Slot(NamedTuple):
    """Where one parameter lives in the flat buffer."""

    name: str
    shape: tuple
    offset: int
    numel: int


class FlatParams:
    """A flat parameter vector and its gradient, of any backend (numpy, torch, cupy)."""

    def __init__(self, params, grads=None, *, slots=None, tensors=()):
        self.backend = backend_for(params)
        if len(params.shape) != 1:
            raise ValueError(f"FlatParams needs a 1-D parameter vector, got shape {tuple(params.shape)}")
        self.params = params
        self.grads = self.backend.zeros_like(params) if grads is None else grads
        if tuple(self.grads.shape) != tuple(params.shape):
            raise ValueError("the gradient buffer must have the shape of the parameter vector")
        self.slots = list(slots) if slots is not None else [Slot("params", (len(params),), 0, len(params))]
        self._tensors = list(tensors)
        self._grad_addresses = [self.backend.address(self.grad_view(i)) for i in range(len(self._tensors))]

    @classmethod
    def from_parameters(cls, parameters, names=None) -> "FlatParams":
        """Move torch parameters into one buffer; the parameters become views into it."""
        import torch

        tensors, seen = [], set()
        for p in parameters:
            if id(p) not in seen:
                seen.add(id(p))
                tensors.append(p)
        if not tensors:
            raise ValueError("no parameters to distribute")
        names = list(names) if names is not None else [f"param{i}" for i in range(len(tensors))]
        kinds = {(p.dtype, p.device) for p in tensors}
        if len(kinds) != 1:
            raise ValueError(f"all parameters must share one dtype and device, found {sorted(map(str, kinds))}")
        dtype, device = kinds.pop()
        total = sum(p.numel() for p in tensors)
        params = torch.empty(total, dtype=dtype, device=device)
        grads = torch.zeros(total, dtype=dtype, device=device)
        slots, offset = [], 0
        with torch.no_grad():
            for name, p in zip(names, tensors):
                n = p.numel()
                params[offset : offset + n].copy_(p.detach().reshape(-1))
                p.data = params[offset : offset + n].view_as(p)
                p.grad = grads[offset : offset + n].view_as(p)
                slots.append(Slot(name, tuple(p.shape), offset, n))
                offset += n
        return cls(params, grads, slots=slots, tensors=tensors)

    @property
    def numel(self) -> int:
        return len(self.params)

    @property
    def tensors(self) -> list:
        """The torch parameters that are views into this buffer (empty for raw arrays)."""
        return self._tensors

    def describe(self) -> dict:
        """Layout summary that must be identical on every rank."""
        return {
            "dtype": str(self.params.dtype),
            "numel": self.numel,
            "shapes": [[slot.name, list(slot.shape)] for slot in self.slots],
        }

    def grad_view(self, index: int):
        slot = self.slots[index]
        return self.grads[slot.offset : slot.offset + slot.numel]

    def adopt_grad(self, index: int) -> None:
        """Make parameter ``index``'s ``.grad`` a view into the flat gradient again.

        Needed when something replaced it (``zero_grad(set_to_none=True)``
        followed by ``backward()`` creates a fresh tensor): its values are
        copied into the flat buffer once.
        """
        p = self._tensors[index]
        grad = p.grad
        if grad is not None and grad.data_ptr() == self._grad_addresses[index]:
            return  # the usual case: backward accumulated into our view
        view = self.grad_view(index)
        if grad is None:
            view.zero_()
        else:
            view.copy_(grad.detach().reshape(-1))  # the values: backward(create_graph=True) gives a graph
        p.grad = view.view_as(p)

    def adopt_grads(self) -> None:
        for index in range(len(self._tensors)):
            self.adopt_grad(index)

    def zero_grad(self) -> None:
        self.grads[...] = 0
        self.adopt_grads()
