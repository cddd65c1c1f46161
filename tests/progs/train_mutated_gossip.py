"""``train_mutated_gossip.py ALGORITHM ARGS...``: ``mpisgd train --algorithm ALGORITHM ARGS...`` with
ALGORITHM's averaging replaced by a no-op (``_mutations_gossip``): the run with communication off."""

import sys

import _mutations_gossip

from mpisgd.cli import main

algorithm = sys.argv[1]
_mutations_gossip.apply(algorithm)
sys.exit(main(["train", "--algorithm", algorithm, *sys.argv[2:]]))
