"""Speed of one rank's DP-SGD step: mpisgd against Opacus and against a plain (non-DP) step.

On ONE process (no MPI), on digits with the harness's model
(:func:`mpisgd.train.models.build_model`, float32), three copies of the same
initial model train side by side for the same number of steps with the same
lr, each on its own identically seeded Poisson sampler (rate
``q = batch_size / n_train``, so the three see the same batches):

``mpisgd``  what one rank of a DP run does: the harness's
            :class:`mpisgd.train.private_step.PrivateStep` around ``sync`` on
            ``COMM_SELF`` (a Poisson batch, the DP-SGD weighted sum written into
            the flat gradient buffer, noise N(0, sigma^2 C^2), scaled by
            ``1 / (q N)``, the ``torch.optim.SGD`` step).
``opacus``  Opacus's DP-SGD with the same sigma, C, q, lr: ``GradSampleModule``
            (hooks, the default of ``PrivacyEngine.make_private``) and
            ``DPOptimizer(expected_batch_size=q N)`` over ``torch.optim.SGD``,
            fed the *same* Poisson index batches. That is what
            ``make_private(poisson_sampling=True)`` builds, minus its DataLoader:
            the DataLoader would index and collate sample by sample, which
            mpisgd does not do, so leaving it out is the setup fairest to Opacus.
``plain``   an ordinary step on the same batches: mean loss, backward, SGD. The
            DP step's cost is ``dp_over_plain_mpisgd`` = plain steps/s over
            mpisgd's DP steps/s (how many plain steps one DP step costs).

Timing is interleaved: training runs in ``rounds`` rounds, each running every
variant for its share of the steps, in alternating order (A B C, C B A, ...);
each variant's rate is the median over the rounds after the first (a warm-up).
The accuracy of each is then measured on the test split. The noise is drawn
unseeded (as a real run does), so accuracies vary a little from run to run.

    python -m mpisgd.bench.dp_speed --model mlp,cnn --batch 64,256 --json runs/dp-speed.json
    python -m mpisgd.bench.dp_speed --quick
"""

import argparse
import json
import statistics
import time
import warnings

import numpy as np
import torch

from ..privacy.sampling import PoissonSampler
from ..torch import DistributedOptimizer
from ..train.data import load_dataset
from ..train.models import build_model
from ..train.private_step import PrivateStep
from ..train.privacy import PrivateRun
from ..train.step import loss_of

VARIANTS = ("mpisgd", "opacus", "plain")
QUICK = {"epochs": 2.0, "rounds": 4}


class _Mpisgd:
    """One rank's DP-SGD step, the harness's own: :class:`PrivateStep` around ``sync`` on ``COMM_SELF``."""

    def __init__(self, model, task, data, sampler, sigma, clip, lr, max_batch):
        from ..comm.mpi import MPI

        self.model = model
        self.dist = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=lr), "sync", comm=MPI.COMM_SELF)
        settings = PrivateRun(rule="dpsgd", clip=clip, r=None, q=sampler.rate, delta=1e-5, kind="rdp",
                              sampling="poisson", central=True, placement="split",
                              batch_size=sampler.expected_size, virtual_batch=max_batch, planned_steps=1,
                              budget=None, seed=None, sigma=sigma)
        self.step = PrivateStep(model, self.dist, task, data, settings, ranks=1, rank=0)
        self.step.sampler = sampler  # the batches the other variants see

    def __call__(self, x, y) -> float:
        return self.step()


class _Plain:
    """A non-DP step on the same batches: mean loss, backward, SGD."""

    def __init__(self, model, task, sampler, lr):
        self.model, self.task, self.sampler = model, task, sampler
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def __call__(self, x, y) -> float:
        index = torch.from_numpy(self.sampler.next())
        self.optimizer.zero_grad()
        loss = loss_of(self.task, self.model(x[index]), y[index])
        loss.backward()
        self.optimizer.step()
        return loss.item()


class _Opacus(_Plain):
    """Opacus's DP-SGD: GradSampleModule (hooks) and DPOptimizer, on the same Poisson batches (the
    same step as :class:`_Plain`; Opacus's hooks and optimizer do the rest)."""

    def __init__(self, model, task, sampler, sigma, clip, lr):
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        self.task, self.sampler = task, sampler
        self.model = GradSampleModule(model, loss_reduction="mean")
        self.optimizer = DPOptimizer(torch.optim.SGD(self.model.parameters(), lr=lr), noise_multiplier=sigma,
                                     max_grad_norm=clip, expected_batch_size=round(sampler.expected_size))


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def compare(model_name: str = "mlp", batch_size: int = 64, steps: int = None, seed: int = 0, *,
            epochs: float = 10.0, sigma: float = 1.0, clip: float = 1.0, lr: float = 0.5, rounds: int = 10,
            max_batch: int = 256, hidden: int = 64, threads: int = 1, quick: bool = False) -> dict:
    """Time and train mpisgd's DP-SGD step, Opacus's and a plain step side by side (see the module).

    ``batch_size``: the expected batch ``q N`` (q = batch_size / n_train);
    ``steps``: training steps of each variant (default: ``epochs / q``);
    ``sigma``/``clip``: the noise multiplier and the clip C; ``max_batch``:
    mpisgd's virtual batch (the harness's ``--dp-virtual-batch``);
    ``threads``: torch threads during the run; ``quick``: 2 epochs in 4
    rounds (a smoke test of a few seconds).
    """
    if quick:
        epochs, rounds = QUICK["epochs"], QUICK["rounds"]
    data = load_dataset("digits", seed=seed)
    info = data.info
    n_train = len(data.y_train)
    if not 0 < batch_size <= n_train:
        raise ValueError(f"batch_size must lie in 1..{n_train}, got {batch_size}")
    q = batch_size / n_train
    steps = max(int(round(epochs / q)), rounds) if steps is None else steps
    rounds = max(1, min(rounds, steps))
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        def sampler():
            return PoissonSampler(n_train, q, rng=np.random.default_rng(seed))

        def model():
            return build_model(model_name, info, hidden=hidden, seed=seed)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Opacus: "full backward hook ... no inputs require gradients"
            runs = {"mpisgd": _Mpisgd(model(), info.task, (x, y), sampler(), sigma, clip, lr, max_batch),
                    "opacus": _Opacus(model(), info.task, sampler(), sigma, clip, lr),
                    "plain": _Plain(model(), info.task, sampler(), lr)}
            seconds = {name: [] for name in VARIANTS}
            shares = np.diff(np.linspace(0, steps, rounds + 1).round().astype(int))
            for index, share in enumerate(shares):
                for name in VARIANTS if index % 2 == 0 else reversed(VARIANTS):
                    start = time.perf_counter()
                    for _ in range(share):
                        runs[name](x, y)
                    seconds[name].append((time.perf_counter() - start) / max(share, 1))
        report = {"model": model_name, "dataset": "digits", "batch_size": batch_size, "sample_rate": q,
                  "noise_multiplier": sigma, "clip": clip, "lr": lr, "steps": int(steps),
                  "epochs": steps * q, "rounds": rounds, "virtual_batch": max_batch, "threads": threads,
                  "dtype": "float32"}
        for name in VARIANTS:
            timed = seconds[name][1:] or seconds[name]  # the first round warms up
            report[name] = {"steps_per_s": 1.0 / statistics.median(timed),
                            "accuracy": _accuracy(runs[name].model, x_test, y_test)}
    finally:
        torch.set_num_threads(previous_threads)
    rate = {name: report[name]["steps_per_s"] for name in VARIANTS}
    report["steps_mpisgd_over_opacus"] = rate["mpisgd"] / rate["opacus"]
    report["dp_over_plain_mpisgd"] = rate["plain"] / rate["mpisgd"]
    report["dp_over_plain_opacus"] = rate["plain"] / rate["opacus"]
    return report


def _numbers(text: str, kind):
    return [kind(part) for part in text.split(",") if part]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mpisgd.bench.dp_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mlp,cnn", help="models, comma-separated (default mlp,cnn)")
    parser.add_argument("--batch", default="64,256", help="expected batch sizes q*N, comma-separated (default 64,256)")
    parser.add_argument("--epochs", type=float, default=10.0, help="epochs of each variant (default 10)")
    parser.add_argument("--steps", type=int, help="steps of each variant (instead of --epochs)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds (default 10)")
    parser.add_argument("--sigma", type=float, default=1.0, help="noise multiplier (default 1.0)")
    parser.add_argument("--clip", type=float, default=1.0, help="clip C (default 1.0)")
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate (default 0.5)")
    parser.add_argument("--virtual-batch", type=int, default=256, help="mpisgd's virtual batch (default 256)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="mlp at batch 64, 2 epochs, 4 rounds (seconds)")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON report to PATH")
    args = parser.parse_args(argv)
    models, batches = (["mlp"], [64]) if args.quick else (args.model.split(","), _numbers(args.batch, int))
    reports = [compare(name, batch, args.steps, args.seed, epochs=args.epochs, sigma=args.sigma, clip=args.clip,
                       lr=args.lr, rounds=args.rounds, max_batch=args.virtual_batch, threads=args.threads,
                       quick=args.quick)
               for name in models for batch in batches]
    text = json.dumps(reports[0] if len(reports) == 1 else reports, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
