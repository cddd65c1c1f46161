"""Non-blocking requests that account their waiting time and finish their work."""

from time import perf_counter

from . import activity


class Request:
    """An MPI request plus what must happen once it completes.

    ``test()`` progresses the operation without blocking (call it during
    local work so that MPI libraries without a progress thread advance the
    transfer; its time counts as ``progress_s``); ``wait()`` blocks until it
    is done (its time counts as ``wait_s``, time blocked in communication). ``on_complete`` runs exactly
    once, after completion (copy a staged buffer back, scale by 1/p, ...). ``what`` names the operation
    for the stall watchdog and the trace (:mod:`.activity`).
    """

    __slots__ = ("_request", "_stats", "_on_complete", "done", "what")

    def __init__(self, request, stats, on_complete=None, what: str = "a request"):
        self._request = request
        self._stats = stats
        self._on_complete = on_complete
        self.done = False
        self.what = what

    def test(self) -> bool:
        if not self.done:
            start = perf_counter()
            finished = self._request.Test()
            end = perf_counter()
            self._stats.progress_s += end - start
            if activity.TRACE is not None:
                activity.TRACE.span("Test", "progress", start, end, self.what)
            if finished:
                self._finish()
        return self.done

    def wait(self) -> None:
        if not self.done:
            start = perf_counter()
            if activity.ON:
                previous = activity.enter("Wait", self.what)
                self._request.Wait()
                activity.leave(previous)
            else:
                self._request.Wait()
            self._stats.wait_s += perf_counter() - start
            self._finish()

    def _finish(self) -> None:
        self.done = True
        if self._on_complete is not None:
            self._on_complete()
            self._on_complete = None


class Completed:
    """A request that is already complete (e.g. restored from a checkpoint)."""

    done = True

    def test(self) -> bool:
        return True

    def wait(self) -> None:
        pass


def wait_all(requests) -> None:
    """Wait for every request in order (skipping ``None``)."""
    for request in requests:
        if request is not None:
            request.wait()


def test_all(requests) -> bool:
    """Progress the requests in order up to the first incomplete one; True when all are complete.

    One ``Test`` lets MPI progress every operation in flight, and collectives
    complete in the order they started, so the later ones are not tested.
    """
    return all(request.test() for request in requests if request is not None)


class InFlight:
    """The requests an algorithm has in flight, in the order they started.

    ``add()`` a request when it starts; ``test()`` progresses them (see
    :func:`test_all`); ``wait()`` completes them all in start order and
    forgets them. A request stays listed until ``wait()``, completed or not
    (testing a completed one costs nothing), so ``requests`` shows what the
    algorithm started since its last wait.
    """

    __slots__ = ("requests",)

    def __init__(self):
        self.requests = []

    def add(self, request):
        """Track ``request`` (returned, for chaining)."""
        self.requests.append(request)
        return request

    def test(self) -> bool:
        return test_all(self.requests) if self.requests else True

    def wait(self) -> None:
        if self.requests:
            requests, self.requests = self.requests, []
            wait_all(requests)

    def __len__(self) -> int:
        return len(self.requests)
