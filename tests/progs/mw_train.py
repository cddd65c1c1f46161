"""``python -m mpisgd train`` with one more master-worker algorithm registered, ``test-elastic``: a tiny
asynchronous elastic averaging written against the base class only (for the harness's tests).

Worker: every ``period`` steps a REQUEST for the center x~ to server 0, d = alpha (x - x~), an UPDATE d,
x <- x - d; silent workers start no exchange. Server 0: REPLY x~, x~ <- x~ + d. A FAREWELL carries x~.
Usage: mpiexec -n N python tests/progs/mw_train.py train --algorithm test-elastic ...
"""

import sys

from mpisgd.algorithm import Option, register
from mpisgd.cli import main
from mpisgd.comm import tags
from mpisgd.masterworker.base import MasterWorkerAlgorithm


@register
class TestElastic(MasterWorkerAlgorithm):
    name = "test-elastic"
    options = {**MasterWorkerAlgorithm.options, "period": Option(4, "steps between exchanges")}

    def __init__(self, flat, **kwargs):
        super().__init__(flat, **kwargs)
        if self.servers != 1:
            raise ValueError("test-elastic has one server")
        self.center = self.model_to_host().copy()

    def after_step(self):
        super().after_step()
        if self.is_server or self.silent or self.steps % self.period:
            return
        x = self.model_to_host().copy()
        center = self.endpoint.request(0).data
        self.host[...] = x - 0.9 / self.workers * (x - center)
        self.endpoint.send(0, tags.UPDATE, x - self.host)
        self.host_to_model()

    def handle(self, message):
        if message.tag == tags.REQUEST:
            self.endpoint.reply(message.source, self.center)
        else:
            self.center += message.data

    def final_slice(self):
        return self.center

    def farewell(self, worker):
        return self.center

    def departed(self, farewells):
        if farewells:
            self.host[...] = farewells[0].data
            self.host_to_model()


if __name__ == "__main__":
    sys.exit(main())
