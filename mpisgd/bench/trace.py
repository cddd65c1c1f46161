"""The cost of ``--trace``: training steps with the timeline recorder off and on, side by side.

One :class:`mpisgd.SyncSGD` on the digits MLP (64-256-10, a step of about a
millisecond, so that per-step Python work shows) runs every step as the
training loop does with its hooks (:mod:`mpisgd.comm.activity`): spans
around forward, backward and the optimizer step, the progress stamp after
the step, and inside SyncSGD the ``Iallreduce`` posted, its ``Test`` and
``Wait``. The variants, timed in interleaved blocks (:mod:`.timing`):

``off``    no trace, no watchdog: the hooks cost an attribute read each
``trace``  a :class:`~mpisgd.comm.trace.Recorder` records every event

Ratio ``trace_over_off``: steps/s with the trace over steps/s without
(1.0: free; the goal, >= 0.9, is a cost under 10 %). Also reported: the
hooks' cost per step when off, timed alone on rank 0 (nanoseconds), and the
events a traced step records.
"""

from time import perf_counter

from ..comm import activity
from ..comm.trace import Recorder
from ..errors import UsageError
from .sync import SyncVariant, Workload
from .timing import interleave, ratio, summarize

SUMMARY = "steps/s of SyncSGD on the digits MLP with --trace off and on: the timeline's overhead"
GOALS = {"trace_over_off": 0.9}
RATE = "steps_per_s"
DEFAULTS = {"steps": 100, "blocks": 9, "warmup": 5}
QUICK = {"steps": 3, "blocks": 2, "warmup": 2}
LAYERS = [64, 256, 10]


def add_arguments(parser) -> None:
    parser.add_argument("--steps", type=int, help=f"timed steps per block (default {DEFAULTS['steps']})")
    parser.add_argument("--blocks", type=int, help=f"timed blocks per variant (default {DEFAULTS['blocks']})")
    parser.add_argument("--warmup", type=int, help=f"untimed steps per variant first (default {DEFAULTS['warmup']})")
    parser.add_argument("--batch", type=int, default=32, help="samples per rank and step (default 32)")


def resolve_settings(args) -> dict:
    base = QUICK if args.quick else DEFAULTS
    settings = {key: getattr(args, key) if getattr(args, key) is not None else base[key] for key in base}
    settings.update(batch=args.batch, lr=0.01, momentum=0.9, layers=LAYERS)
    if min(settings["steps"], settings["blocks"], settings["batch"]) < 1 or settings["warmup"] < 0:
        raise UsageError("--steps, --blocks and --batch must be >= 1 and --warmup >= 0")
    return settings


class TracedStep(SyncVariant):
    """SyncSGD's step with the training loop's hooks; ``recorder`` (or None) is switched in for its steps."""

    def __init__(self, workload, comm, recorder):
        super().__init__(workload, comm)
        self.recorder = recorder

    def run(self, steps: int):
        def action():
            activity.TRACE, activity.ON = self.recorder, self.recorder is not None
            try:
                for _ in range(steps):
                    self.step()
            finally:
                activity.TRACE, activity.ON = None, False
        return action

    def step(self) -> None:
        optimizer, model = self.optimizer, self.model
        optimizer.zero_grad()
        with activity.span("forward"):
            loss = self.workload.loss(model, self.steps)
        with activity.span("backward"):
            loss.backward()
        with activity.span("optimizer step"):
            optimizer.step()
        self.steps += 1
        if activity.ON:
            activity.progress(self.steps)


def hooks_off_ns(repeat: int = 100_000) -> float:
    """Nanoseconds per step of the hooks a traced step passes through, with nothing switched on
    (three spans, the progress check, the checks in Iallreduce/Test/Wait), over an empty loop."""
    span = activity.span

    def hooks():
        for _ in range(repeat):
            with span("forward"):
                pass
            with span("backward"):
                pass
            with span("optimizer step"):
                pass
            if activity.ON:  # the progress stamp's check
                pass
            if activity.TRACE is not None or activity.TRACE is not None or activity.ON:  # Iallreduce, Test, Wait
                pass

    def empty():
        for _ in range(repeat):
            pass

    timings = []
    for action in (hooks, empty):
        start = perf_counter()
        action()
        timings.append(perf_counter() - start)
    return (timings[0] - timings[1]) / repeat * 1e9


def run(comm, args):
    settings = resolve_settings(args)
    workload = Workload(comm, settings["layers"], settings, args.seed)
    recorder = Recorder(comm.Get_rank(), limit=10**7)
    variants = {"off": TracedStep(workload, comm, None), "trace": TracedStep(workload, comm, recorder)}
    try:
        actions = {name: variant.run(settings["steps"]) for name, variant in variants.items()}
        samples = interleave(comm, actions, rounds=settings["blocks"], warmup=settings["warmup"])
    finally:
        for variant in variants.values():
            variant.close()
    results = {name: summarize(seconds, settings["steps"], RATE) for name, seconds in samples.items()}
    traced_steps = variants["trace"].steps
    results["trace"]["events_per_step"] = len(recorder.events) / max(traced_steps, 1)
    results["off"]["hooks_off_ns_per_step"] = hooks_off_ns()
    ratios = {"trace_over_off": {"digits": ratio(results["trace"], results["off"], RATE)}}
    return {"ranks": comm.Get_size(), **settings}, results, ratios
