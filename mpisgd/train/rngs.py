"""Every random stream of a run, captured and restored, so that a resumed run draws what it would have.

The process-wide streams (Python's ``random``, NumPy's legacy global, torch's
CPU generator) and the generators that objects hold as attributes: a NumPy
``Generator`` (a gossip algorithm's peer choices), a ``torch.Generator`` or a
dict of them by device (AdaHessian's Rademacher vectors).

Example::

    >>> import numpy as np
    >>> class Chooser:
    ...     def __init__(self):
    ...         self.rng = np.random.default_rng(0)
    >>> a = Chooser(); _ = a.rng.random(); saved = capture({"chooser": a})
    >>> b = Chooser(); restore({"chooser": b}, saved)
    >>> bool(a.rng.random() == b.rng.random())
    True
"""

import random

import numpy as np


def _torch_generator(value) -> bool:
    import torch

    return isinstance(value, torch.Generator)


def _held(obj) -> dict:
    """``obj``'s generator attributes: name -> generator, or name -> {device: torch generator}."""
    found = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.random.Generator) or _torch_generator(value):
            found[name] = value
        elif isinstance(value, dict) and value and all(_torch_generator(v) for v in value.values()):
            found[name] = value
    return found


def _state(generator):
    if isinstance(generator, np.random.Generator):
        return {"numpy": generator.bit_generator.state}
    if isinstance(generator, dict):
        return {"devices": [(str(device), not isinstance(device, str), g.get_state())
                            for device, g in generator.items()]}
    return {"torch": generator.get_state()}


def capture(objects: dict) -> dict:
    """The process-wide streams and those held by ``objects`` (key -> object; None values skipped)."""
    import torch

    held = {key: {name: _state(g) for name, g in _held(obj).items()}
            for key, obj in objects.items() if obj is not None}
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "held": held}


def restore(objects: dict, state: dict) -> None:
    """Put back what :func:`capture` saved, into freshly built ``objects`` with the same keys."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    for key, streams in state["held"].items():
        obj = objects[key]
        for name, saved in streams.items():
            if "numpy" in saved:
                getattr(obj, name).bit_generator.state = saved["numpy"]
            elif "torch" in saved:
                getattr(obj, name).set_state(saved["torch"])
            else:  # a dict by device, maybe still empty in the fresh object
                table = getattr(obj, name)
                for device, is_device, value in saved["devices"]:
                    key = torch.device(device) if is_device else device  # the key type the owner looks up
                    table.setdefault(key, torch.Generator(device=device)).set_state(value)
