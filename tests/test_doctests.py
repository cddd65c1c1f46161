"""The docstring examples of the pure modules (no MPI, no torch) run as doctests."""

import doctest
import importlib

import pytest

PURE_MODULES = ["mpisgd.arrays", "mpisgd.flat", "mpisgd.gossip.topology", "mpisgd.gossip.topology.graph",
                "mpisgd.gossip.topology.mixing", "mpisgd.gossip.topology.spec"]


@pytest.mark.parametrize("name", PURE_MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
