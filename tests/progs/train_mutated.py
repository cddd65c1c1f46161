"""``mpisgd train --algorithm ALGORITHM ARGS...`` with ALGORITHM's communication switched off
(``_mutations.apply``): the same command-line run as the accuracy test's, which must then fall short.

Usage: ``mpiexec -n N python tests/progs/train_mutated.py ALGORITHM [TRAIN ARGS...]``
"""

import sys

from _mutations import apply

from mpisgd.cli import main

algorithm, *arguments = sys.argv[1:]
apply(algorithm)
sys.exit(main(["train", "--algorithm", algorithm, *arguments]))
