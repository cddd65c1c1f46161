"""Message tags of mpisgd's point-to-point traffic: one table, named constants.

Every tag lives on mpisgd's private duplicate communicator, so it never
meets the user's own messages. Fragment messages use ``FRAGMENT + f`` for
fragment ``f`` (``f < MAX_FRAGMENTS``).
"""

MODEL = 1  # a full flat model (gossip, Swift, AD-PSGD)
AVERAGE_REQUEST = 2  # AD-PSGD: an active worker asks a passive one to average
AVERAGE_REPLY = 3  # AD-PSGD: the passive worker's model, in answer
FRAGMENT = 1000  # DivShare: FRAGMENT + fragment id
MAX_FRAGMENTS = 30000

NAMES = {MODEL: "model", AVERAGE_REQUEST: "average-request", AVERAGE_REPLY: "average-reply"}


def fragment_tag(fragment: int) -> int:
    if not 0 <= fragment < MAX_FRAGMENTS:
        raise ValueError(f"fragment id {fragment} outside [0, {MAX_FRAGMENTS})")
    return FRAGMENT + fragment


def name(tag: int) -> str:
    return f"fragment-{tag - FRAGMENT}" if tag >= FRAGMENT else NAMES.get(tag, f"tag-{tag}")
