"""``mpisgd privacy``: plan a DP run before submitting it, without MPI.

``--sigma S`` prints the ε spent by ``--steps`` steps at sampling rate ``--q`` (``{"epsilon": ...}``);
``--epsilon E`` instead prints the smallest noise multiplier meeting that budget and its ε
(``{"noise_multiplier": ..., "epsilon": ...}``). One JSON object on stdout; an error in what was asked
is one line on stderr and exit status 2.
"""

import json
import sys

from ..errors import UsageError
from .accountant import KINDS, TOLERANCE, check_delta, check_phase, epsilon_for, noise_multiplier_for


def add_privacy_command(commands) -> None:
    """Add ``privacy`` to the ``mpisgd`` command line's subparsers."""
    parser = commands.add_parser(
        "privacy", help="the epsilon of a DP schedule, or the noise multiplier for a target epsilon",
        description="The (epsilon, delta) of STEPS Poisson-subsampled Gaussian steps at sampling rate Q and "
                    "noise multiplier SIGMA, or with --epsilon the smallest noise multiplier meeting that "
                    f"budget (relative tolerance {TOLERANCE:g}). Prints JSON; needs no MPI launcher.")
    parser.add_argument("--q", type=float, required=True, help="sampling rate: expected batch / data set size")
    parser.add_argument("--steps", type=int, required=True, help="number of DP steps (T)")
    parser.add_argument("--delta", type=float, required=True, help="target delta (below 1/n for n examples)")
    parser.add_argument("--sigma", type=float, default=None, help="noise multiplier (noise std / clipping norm)")
    parser.add_argument("--epsilon", type=float, default=None,
                        help="target epsilon: print the smallest noise multiplier that meets it")
    parser.add_argument("--accountant", choices=KINDS, default="rdp",
                        help="rdp: Opacus's RDP analysis; pld: dp-accounting's privacy loss distributions "
                             "(tighter); rdp-dpa: dp-accounting's RDP (a cross-check)")


def calculate(args) -> dict:
    """The JSON answer of ``mpisgd privacy`` for parsed arguments; UsageError for bad input."""
    if (args.sigma is None) == (args.epsilon is None):
        raise UsageError("give exactly one of --sigma (to get epsilon) and --epsilon (to get the noise multiplier)")
    check_phase(args.q, 1.0 if args.sigma is None else args.sigma, args.steps)
    check_delta(args.delta)
    sigma = args.sigma
    answer = {}
    if sigma is None:
        sigma = noise_multiplier_for(args.epsilon, args.delta, args.q, args.steps, args.accountant)
        answer["noise_multiplier"] = sigma
    answer["epsilon"] = epsilon_for(args.q, sigma, args.steps, args.delta, args.accountant)
    return answer


def privacy_main(args) -> int:
    """Run ``mpisgd privacy``: JSON on stdout, or one error line on stderr and status 2."""
    try:
        answer = calculate(args)
    except UsageError as error:
        sys.stderr.write(f"mpisgd privacy: error: {error}\n")
        return 2
    print(json.dumps(answer))
    return 0
