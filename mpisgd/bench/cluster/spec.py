"""What an emulated cluster looks like: hosts, their link rate and one-way delay, stragglers.

``--network RATE,DELAY`` sets every host's link, e.g. ``1gbit,1ms`` or
``100mbit,5ms``; ``--straggler HOST:RATE,DELAY`` gives host ``HOST`` (its
index, which is also its MPI rank) a link of its own. Rates take ``bit``,
``kbit``, ``mbit`` or ``gbit`` (a bare number is bit/s); delays ``us``,
``ms`` or ``s`` (a bare number is seconds).

The model: every host has one access link with an uplink and a downlink of
its rate (FIFO, store-and-forward, unlimited buffer). A packet from host i
to host j is serialized on i's uplink, travels ``max(delay_i, delay_j)``
(one way), then is serialized on j's downlink. So two ordinary hosts see
the ``--network`` delay between them, and every path that touches a
straggler sees the straggler's.

The whole model is computed by the link emulator in user space (its C loop,
``linkemu.c``, or the pure-Python fallback; :mod:`.emulator`); the kernel
does none of it (no ``tc`` qdisc is installed on ``tun0``).
"""

import json
import re
from dataclasses import asdict, dataclass, field

from ...errors import UsageError

MAX_HOSTS = 250  # as linkemu.c; data addresses 10.201.SLOT.1 to .250
TUN_NAME, TUN_MTU = "tun0", 65000  # each host's emulated data link; a large MTU keeps packet rates low


def data_address(slot: int, host: int) -> str:
    """The address of ``host``'s end of its emulated link, in cluster slot ``slot``."""
    return f"10.201.{slot}.{host + 1}"


_RATE_UNITS = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_DELAY_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def _quantity(text: str, units: dict, what: str, default_unit: str) -> float:
    match = _NUMBER_UNIT.match(text)
    unit = (match.group(2).lower() or default_unit) if match else None
    if not match or unit not in units:
        raise UsageError(f"bad {what} {text!r}: expected a number with one of the units "
                         f"{', '.join(units)} (e.g. {'1gbit' if what == 'rate' else '5ms'})")
    return float(match.group(1)) * units[unit]


def parse_rate(text: str) -> float:
    """Bits per second of ``text`` (``1gbit``, ``100mbit``, ``500kbit``, ``1e9``)."""
    rate = _quantity(text, _RATE_UNITS, "rate", "bit")
    if rate <= 0:
        raise UsageError(f"bad rate {text!r}: it must be positive")
    return rate


def parse_delay(text: str) -> float:
    """Seconds of ``text`` (``1ms``, ``250us``, ``0.01``)."""
    return _quantity(text, _DELAY_UNITS, "delay", "s")


@dataclass(frozen=True)
class Link:
    rate_bps: float
    delay_s: float

    @classmethod
    def parse(cls, text: str) -> "Link":
        parts = text.split(",")
        if len(parts) != 2:
            raise UsageError(f"bad link {text!r}: expected RATE,DELAY, e.g. 1gbit,1ms")
        return cls(parse_rate(parts[0]), parse_delay(parts[1]))

    def __str__(self) -> str:
        return f"{self.rate_bps / 1e6:g} Mbit/s + {self.delay_s * 1e3:g} ms"


@dataclass(frozen=True)
class ClusterSpec:
    """N hosts with one link each (``links[i]``); ``stragglers`` lists the hosts given their own."""

    hosts: int
    network: Link
    overrides: dict = field(default_factory=dict)  # host index -> Link

    @classmethod
    def parse(cls, hosts: int, network: str, stragglers=()) -> "ClusterSpec":
        if not 1 <= hosts <= MAX_HOSTS:
            raise UsageError(f"an emulated cluster has 1 to {MAX_HOSTS} hosts (one address each in "
                             f"10.201.SLOT.0/24), got {hosts}")
        overrides = {}
        for text in stragglers or ():
            host, sep, link = text.partition(":")
            if not sep or not host.strip().isdigit():
                raise UsageError(f"bad --straggler {text!r}: expected HOST:RATE,DELAY, e.g. 3:100mbit,5ms")
            index = int(host)
            if index >= hosts:
                raise UsageError(f"--straggler {text!r}: host {index} does not exist (hosts 0..{hosts - 1})")
            overrides[index] = Link.parse(link)
        return cls(hosts, Link.parse(network), overrides)

    def link(self, host: int) -> Link:
        return self.overrides.get(host, self.network)

    def as_dict(self) -> dict:
        return {"hosts": self.hosts, "network": asdict(self.network),
                "stragglers": {str(h): asdict(link) for h, link in sorted(self.overrides.items())},
                "model": "per-host access link: FIFO uplink and downlink at the host's rate, one-way delay "
                         "max(delay_i, delay_j) between hosts i and j, unlimited buffers"}

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    @classmethod
    def from_json(cls, text: str) -> "ClusterSpec":
        data = json.loads(text)
        return cls(data["hosts"], Link(**data["network"]),
                   {int(h): Link(**link) for h, link in data["stragglers"].items()})
