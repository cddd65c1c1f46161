"""Message tags of mpisgd's point-to-point traffic: one table, named constants, and the tag arithmetic.

Every tag lives on mpisgd's private duplicate communicator, so it never
meets the user's own messages. Fragment messages use ``FRAGMENT + f`` for
fragment ``f`` (``f < MAX_FRAGMENTS``); :func:`fragment_tag` and
:func:`fragment_of` convert both ways.

Example::

    >>> fragment_of(fragment_tag(5)), name(fragment_tag(5)), name(MODEL)
    (5, 'fragment-5', 'model')
"""

MODEL = 1  # a full flat model (gossip, Swift, AD-PSGD)
AVERAGE_REQUEST = 2  # AD-PSGD: an active worker asks a passive one to average
AVERAGE_REPLY = 3  # AD-PSGD: the passive worker's model, in answer
REQUEST = 10  # master-worker: a worker asks a server for something (an update may ride along)
REPLY = 11  # master-worker: the server's answer to a REQUEST
UPDATE = 12  # master-worker: a worker's update, applied by the server without an answer
LEAVE = 13  # master-worker: a worker leaves; it sends nothing after this
FAREWELL = 14  # master-worker: the server's answer to LEAVE; it sends nothing after this
PRESENT = 20  # training harness, end of a master-worker run: this rank is alive and done (to rank 0)
DEPARTED = 21  # training harness: this rank leaves the run early on purpose (to rank 0)
SURVIVORS = 22  # training harness: rank 0's list of the ranks that take part in the end of the run
FRAGMENT = 1000  # DivShare: FRAGMENT + fragment id
MAX_FRAGMENTS = 30000

NAMES = {MODEL: "model", AVERAGE_REQUEST: "average-request", AVERAGE_REPLY: "average-reply",
         REQUEST: "request", REPLY: "reply", UPDATE: "update", LEAVE: "leave", FAREWELL: "farewell",
         PRESENT: "present", DEPARTED: "departed", SURVIVORS: "survivors"}


def fragment_tag(fragment: int) -> int:
    """The tag of fragment ``fragment``'s messages."""
    if not 0 <= fragment < MAX_FRAGMENTS:
        raise ValueError(f"fragment id {fragment} outside [0, {MAX_FRAGMENTS})")
    return FRAGMENT + fragment


def is_fragment(tag: int) -> bool:
    return FRAGMENT <= tag < FRAGMENT + MAX_FRAGMENTS


def fragment_of(tag: int) -> int:
    """The fragment id a fragment message's tag carries."""
    if not is_fragment(tag):
        raise ValueError(f"tag {tag} is not a fragment tag")
    return tag - FRAGMENT


def name(tag: int) -> str:
    return f"fragment-{fragment_of(tag)}" if is_fragment(tag) else NAMES.get(tag, f"tag-{tag}")
