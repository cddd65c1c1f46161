"""The torch binding: a real torch Optimizer, generated signatures, initial parameters, schedulers."""

import inspect
import subprocess
import sys

import pytest
from mpirun import ROOT, assert_ok, run_prog

torch = pytest.importorskip("torch")
import mpisgd  # noqa: E402
from mpisgd.torch import CLASSES  # noqa: E402

NAMES = {"SyncSGD": "sync", "LocalSGD": "local", "CoCoDSGD": "cocod", "FDA": "fda", "EASGD": "easgd",
         "EAMSGD": "eamsgd", "LSGD": "lsgd", "GossipSGD": "gossip", "ElasticGossipSGD": "elastic-gossip",
         "SwiftSGD": "swift", "DivShareSGD": "divshare", "ADPSGD": "adpsgd", "EASGDAsync": "easgd-async",
         "EAMSGDAsync": "eamsgd-async", "EASGDDynamicWeighting": "easgd-dw"}


def test_every_algorithm_has_a_torch_class_importable_from_mpisgd():
    assert set(CLASSES) == set(NAMES)
    for class_name, algorithm in NAMES.items():
        cls = getattr(mpisgd, class_name)
        assert cls is CLASSES[class_name] and cls.algorithm_class is mpisgd.get_algorithm(algorithm)
        assert issubclass(cls, torch.optim.Optimizer) and issubclass(cls, mpisgd.DistributedOptimizer)
    assert issubclass(mpisgd.DistributedOptimizer, torch.optim.Optimizer)


@pytest.mark.parametrize("class_name", sorted(NAMES))
def test_signature_and_docstring_come_from_the_options(class_name):
    cls = CLASSES[class_name]
    options = mpisgd.get_algorithm(NAMES[class_name]).options
    parameters = list(inspect.signature(cls).parameters.values())
    assert parameters[0].name == "optimizer" and parameters[0].default is inspect.Parameter.empty
    keywords = {p.name: p.default for p in parameters[1:]}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])
    assert keywords == {"comm": None, "names": None, "init": "broadcast",
                        **{name: option.default for name, option in options.items()}}
    for name, option in options.items():
        assert f"{name}={option.default!r}: {option.help}" in cls.__doc__


def test_cocod_signature_reads_like_the_issue():
    assert str(inspect.signature(mpisgd.CoCoDSGD)) == (
        "(optimizer, *, comm=None, names=None, init='broadcast', period=4, overlap=True, weight=1.0)")


def test_a_second_algorithm_is_rejected_before_any_communication():
    model = torch.nn.Linear(3, 1)
    with pytest.raises(TypeError, match="takes no algorithm argument"):
        mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), "cocod")
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        mpisgd.DistributedOptimizer(list(model.parameters()), "sync")


def test_import_mpisgd_imports_neither_torch_nor_mpi():
    code = "import sys, mpisgd\nprint('torch' in sys.modules, 'mpi4py.MPI' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("ranks", [1, 2])
def test_initial_parameters_broadcast_module_and_add_param_group(ranks):
    """Different seeds end as one model under sync; init='check' raises on every rank; 'keep' keeps."""
    result = run_prog(ranks, "torch_init.py", timeout=120)
    assert_ok(result)
    if ranks == 2:
        for rank in range(2):
            assert f"rank {rank}: AgreementError: ranks start from different parameter values" in result.stdout


def test_lr_schedulers_on_every_wrapper():
    assert_ok(run_prog(2, "torch_schedulers.py", timeout=240))


def test_mean_gradient_after_backward_grad_scaler_and_torch_compile():
    """sync's .grad is the global mean after backward(); GradScaler on every wrapper (an inf on one
    rank skips only the local steps it must, nobody hangs); a torch.compile'd model trains alike."""
    assert_ok(run_prog(2, "torch_grad_scaler.py", timeout=300))
