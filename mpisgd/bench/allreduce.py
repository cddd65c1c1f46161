"""Bucketed gradient all-reduce of mpisgd against one raw ``MPI.Allreduce``.

Variants, on the same number of float32 bytes per rank:

``bucketed``  :class:`mpisgd.collective.BucketedAllReduce` over a
              :class:`~mpisgd.flat.FlatParams` whose gradient vector is cut
              into several parameter slots (weight/bias pairs, like a
              model's), driven the numpy way: ``before_step()``, which
              starts one ``Iallreduce`` per bucket of ``bucket_mb`` MiB,
              waits for all of them and averages (scales by ``1/p``).
``raw``       one ``comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)`` on the
              whole vector: the least a user can do (it does not even
              average).

Two more references split the gap between them into its causes (ratios
``bucketed_over_raw_average`` and ``bucketed_over_iallreduce_average``,
informative, no goal):

``raw_average``         ``Allreduce`` then ``buf *= 1/p``: the cost of averaging.
``iallreduce_average``  one ``Iallreduce`` + ``Wait`` then ``buf *= 1/p``: the
                        non-blocking collective mpisgd uses, without its
                        bookkeeping and without buckets.

Throughput is message bytes per second (``4 * floats / seconds``), the
median over interleaved samples; each sample repeats the operation enough
times to move about ``--sample-mb`` MiB. Ratio ``bucketed_over_raw`` per
size; the goal is >= 0.9.
"""

import numpy as np
from mpi4py import MPI

from ..collective import BucketedAllReduce
from ..errors import UsageError
from ..flat import FlatParams, Slot
from .report import progress
from .timing import interleave, ratio, summarize

SUMMARY = "mpisgd's bucketed all-reduce against one raw MPI Allreduce of the same bytes"
GOALS = {"bucketed_over_raw": 0.9}
RATE = "bytes_per_s"
REFERENCES = ("raw", "raw_average", "iallreduce_average")
DEFAULTS = {"sizes": "1e4,1e5,1e6,5e6", "repeats": 15, "warmup": 3, "sample_mb": 16.0}
QUICK = {"sizes": "1e3,1e4", "repeats": 3, "warmup": 1, "sample_mb": 1.0}


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", help=f"message sizes in float32 elements, comma separated "
                        f"(default {DEFAULTS['sizes']}; --quick {QUICK['sizes']})")
    parser.add_argument("--repeats", type=int, help=f"timed samples per variant and size "
                        f"(default {DEFAULTS['repeats']}; --quick {QUICK['repeats']})")
    parser.add_argument("--warmup", type=int, help=f"untimed samples per variant and size first "
                        f"(default {DEFAULTS['warmup']})")
    parser.add_argument("--sample-mb", type=float, help="MiB one sample moves at least: small messages "
                        f"are repeated within a sample (default {DEFAULTS['sample_mb']:g})")
    parser.add_argument("--layers", type=int, default=4,
                        help="weight/bias slot pairs in the gradient vector (default 4)")
    parser.add_argument("--bucket-mb", type=float, default=BucketedAllReduce.options["bucket_mb"].default,
                        help="bucket size of the bucketed all-reduce in MiB (default: mpisgd's default)")


def resolve_settings(args) -> dict:
    """The run's settings from the options (``--quick`` picks other defaults); UsageError if invalid."""
    base = QUICK if args.quick else DEFAULTS
    settings = {key: getattr(args, key) if getattr(args, key) is not None else value for key, value in base.items()}
    try:
        settings["sizes"] = [int(float(text)) for text in str(settings["sizes"]).split(",") if text.strip()]
    except ValueError:
        raise UsageError(f"--sizes must be numbers separated by commas, got {settings['sizes']!r}") from None
    if not settings["sizes"] or min(settings["sizes"]) < 2:
        raise UsageError("--sizes must list element counts of at least 2")
    if settings["repeats"] < 1 or settings["warmup"] < 0 or settings["sample_mb"] <= 0:
        raise UsageError("--repeats must be >= 1, --warmup >= 0 and --sample-mb > 0")
    if args.layers < 1 or args.bucket_mb <= 0:
        raise UsageError("--layers must be >= 1 and --bucket-mb > 0")
    return settings


def model_like_slots(numel: int, layers: int) -> list:
    """Cut ``numel`` elements into ``layers`` weight/bias pairs, like a dense network's gradient."""
    layers = max(1, min(layers, numel // 2))
    bias = max(1, min(1024, numel // (64 * layers)))
    weights = np.array_split(np.arange(numel - layers * bias), layers)
    slots, offset = [], 0
    for index, weight in enumerate(weights):
        for name, count in ((f"layer{index}.weight", len(weight)), (f"layer{index}.bias", bias)):
            slots.append(Slot(name, (count,), offset, count))
            offset += count
    return slots


def _repeated(operation, times: int):
    def action():
        for _ in range(times):
            operation()

    return action


def measure_size(comm, numel: int, settings: dict, args) -> dict:
    """Interleaved timings of both variants for one message size."""
    params = np.zeros(numel, dtype=np.float32)
    grads = np.zeros(numel, dtype=np.float32)  # zeros stay zeros: no overflow, no denormals
    flat = FlatParams(params, grads, slots=model_like_slots(numel, args.layers))
    bucketed = BucketedAllReduce(flat, comm=comm, bucket_mb=args.bucket_mb)
    raw_buffer = np.zeros(numel, dtype=np.float32)

    scale = np.float32(1.0 / comm.Get_size())

    def raw():
        comm.Allreduce(MPI.IN_PLACE, raw_buffer, op=MPI.SUM)

    def raw_average():
        comm.Allreduce(MPI.IN_PLACE, raw_buffer, op=MPI.SUM)
        np.multiply(raw_buffer, scale, out=raw_buffer)

    def iallreduce_average():
        comm.Iallreduce(MPI.IN_PLACE, raw_buffer, op=MPI.SUM).Wait()
        np.multiply(raw_buffer, scale, out=raw_buffer)

    nbytes = raw_buffer.nbytes
    per_sample = max(1, round(settings["sample_mb"] * 2**20 / nbytes))
    operations = {"bucketed": bucketed.before_step, "raw": raw, "raw_average": raw_average,
                  "iallreduce_average": iallreduce_average}
    variants = {name: _repeated(operation, per_sample) for name, operation in operations.items()}
    try:
        samples = interleave(comm, variants, rounds=settings["repeats"], warmup=settings["warmup"])
    finally:
        bucketed.close()
    summaries = {name: summarize(seconds, nbytes * per_sample, RATE) for name, seconds in samples.items()}
    return {
        "floats": numel,
        "bytes": nbytes,
        "ops_per_sample": per_sample,
        "buckets": len(bucketed.buckets),
        "slots": len(flat.slots),
        **summaries,
    }


def run(comm, args):
    """Run the benchmark; return (config, results, ratios)."""
    settings = resolve_settings(args)
    results, ratios = [], {f"bucketed_over_{name}": {} for name in REFERENCES}
    for numel in settings["sizes"]:
        entry = measure_size(comm, numel, settings, args)
        results.append(entry)
        for name in REFERENCES:
            ratios[f"bucketed_over_{name}"][str(numel)] = ratio(entry["bucketed"], entry[name], RATE)
        rates = ", ".join(f"{name} {entry[name][RATE] / 1e9:.3f}" for name in ("bucketed", *REFERENCES))
        progress(comm, f"allreduce {numel:>9d} floats, GB/s: {rates}; "
                       f"bucketed/raw {ratios['bucketed_over_raw'][str(numel)]:.3f}")
    config = {**settings, "layers": args.layers, "bucket_mb": args.bucket_mb, "dtype": "float32",
              "rate": "message bytes per second per rank, median of interleaved samples"}
    return config, results, ratios
