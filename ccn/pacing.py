"""Pacing one peer's datagrams at the rate its receiver says it gets, sans-IO.

A datagram face sends whole packets back to back at the speed of the local interface. Where a
slower link with a shallow queue lies on the path, a burst larger than that queue loses its
tail every time, and neither asking for the lost fragments again (:mod:`ccn.frag`) nor the
consumer's window (which sees no loss until its timer fires) slows the burst down. The receiver
knows what gets through: each of its requests for missing fragments carries the rate at which
it received from this sender (``protocol.md`` §7). The sender then paces its Data at that rate:

- A :class:`Pacer` is idle (everything goes at once) until :meth:`Pacer.feedback` gives it a
  rate; from then on :meth:`Pacer.take` hands out only what a token bucket of that rate allows
  (a burst of at most :data:`BURST_TIME` of the rate, and never less than :data:`MIN_BURST`).
- Without feedback the rate grows by a quarter every :data:`PROBE_EVERY` (the path may carry
  more: another flow ended); after :data:`RELEASE_AFTER` without feedback the pacer is idle
  again and sends what it holds.
- What waits is bounded: :data:`QUEUE_TIME` of the rate (at least :data:`MIN_QUEUE` bytes).
  :meth:`Pacer.offer` refuses a packet that would not fit; it is lost, as on a wire, and the
  consumer's window learns of it from its timeout.

The receiver's side is a :class:`RateMeter`: the rate at which datagrams came over the last
:data:`HORIZON`, up to the latest one (a request goes out a while after the fragments stopped
coming: that wait is no part of the rate).

Time is passed in as ``now``: no clock and no I/O here.
"""

from __future__ import annotations

from collections import deque

#: The largest burst, in seconds of the paced rate (and the smallest, in bytes).
BURST_TIME = 0.002
MIN_BURST = 8 * 1024
#: Bytes that may wait, in seconds of the paced rate (and at least this many bytes).
QUEUE_TIME = 0.25
MIN_QUEUE = 256 * 1024
#: Without feedback, the rate grows by a quarter this often ...
PROBE_EVERY = 0.1
PROBE_GROWTH = 1.25
#: ... and pacing stops after this long.
RELEASE_AFTER = 2.0
#: The slowest rate a receiver's report can set, bytes/s (a report of less is taken as this).
MIN_RATE = 64 * 1024


class Pacer:
    """The datagrams of one peer, paced once its receiver has reported a rate."""

    __slots__ = (
        "_feedback",
        "_grown",
        "_queue",
        "_t",
        "_tokens",
        "dropped",
        "queued_bytes",
        "rate",
    )

    def __init__(self) -> None:
        #: bytes/s, or None while idle (nothing is held back)
        self.rate: float | None = None
        #: packets refused because what waits would exceed the bound
        self.dropped = 0
        self.queued_bytes = 0
        self._queue: deque[bytes] = deque()
        self._tokens = 0.0
        self._t = 0.0  # when the tokens were last counted
        self._feedback = 0.0  # when the last report came
        self._grown = 0.0  # when the rate last grew

    @property
    def active(self) -> bool:
        return self.rate is not None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def feedback(self, rate: int, now: float) -> None:
        """The receiver reports getting ``rate`` bytes/s (0: it could not tell; ignored)."""
        if rate <= 0:
            return
        if self.rate is None:
            self._tokens = self._burst(max(rate, MIN_RATE))
            self._t = now
        else:
            self._count(now)
        self.rate = float(max(rate, MIN_RATE))
        self._feedback = self._grown = now

    def offer(self, datagrams: list[bytes], now: float, *, first: bool = False) -> bool:
        """Queue one packet's ``datagrams`` (at the head with ``first``: fragments sent again,
        which a receiver is waiting for). False if it does not fit: dropped and counted."""
        size = sum(len(d) for d in datagrams)
        self._adapt(now)
        rate = self.rate
        bound = MIN_QUEUE if rate is None else max(MIN_QUEUE, rate * QUEUE_TIME)
        if self.queued_bytes and self.queued_bytes + size > bound:
            self.dropped += 1
            return False
        if first:
            self._queue.extendleft(reversed(datagrams))
        else:
            self._queue.extend(datagrams)
        self.queued_bytes += size
        return True

    def take(self, now: float) -> list[bytes]:
        """The datagrams that may go now, in order (all of them while idle)."""
        self._adapt(now)
        queue = self._queue
        if self.rate is None:
            out = list(queue)
            queue.clear()
            self.queued_bytes = 0
            return out
        self._count(now)
        out = []
        # (a hair of slack: the tokens counted at the time next_time gave may fall short of
        # the datagram by a rounding error, and nothing would ever go)
        while queue and len(queue[0]) <= self._tokens + 1e-6:
            d = queue.popleft()
            self._tokens -= len(d)
            self.queued_bytes -= len(d)
            out.append(d)
        return out

    def next_time(self, now: float) -> float | None:
        """When the first datagram waiting may go (None if none waits)."""
        if not self._queue:
            return None
        rate = self.rate
        if rate is None:
            return now
        self._count(now)
        missing = len(self._queue[0]) - self._tokens
        return now if missing <= 0 else now + missing / rate

    def _burst(self, rate: float) -> float:
        return max(MIN_BURST, rate * BURST_TIME)

    def _count(self, now: float) -> None:
        rate = self.rate
        if rate is None:
            return
        if now > self._t:
            self._tokens = min(self._burst(rate), self._tokens + (now - self._t) * rate)
            self._t = now

    def _adapt(self, now: float) -> None:
        """Grow the rate, or stop pacing, as time passes without feedback."""
        if self.rate is None:
            return
        if now - self._feedback >= RELEASE_AFTER:
            self.rate = None
            return
        while now - self._grown >= PROBE_EVERY:
            self._count(self._grown + PROBE_EVERY)
            self.rate *= PROBE_GROWTH
            self._grown += PROBE_EVERY


#: A RateMeter measures over this many seconds before the latest datagram ...
HORIZON = 0.1
#: ... from a sample every this many datagrams.
SAMPLE_EVERY = 8


class RateMeter:
    """Bytes per second received lately (see the module's docstring)."""

    __slots__ = ("_bytes", "_latest", "_n", "_samples")

    def __init__(self) -> None:
        self._bytes = 0
        self._n = 0
        self._latest = 0.0
        self._samples: deque[tuple[float, int]] = deque()  # (time, bytes counted by then)

    def add(self, size: int, now: float) -> None:
        self._bytes += size
        self._latest = now
        n = self._n
        self._n = n + 1
        if n % SAMPLE_EVERY == 0:
            samples = self._samples
            samples.append((now, self._bytes))
            while now - samples[0][0] > HORIZON:
                samples.popleft()

    def rate(self) -> int:
        """Bytes/s from the oldest sample within :data:`HORIZON` of the latest datagram to that
        datagram; 0 if that is too little to tell (under 2 ms, or a single sample)."""
        samples = self._samples
        latest = self._latest
        for t, counted in samples:
            if latest - t <= HORIZON:
                span = latest - t
                return round((self._bytes - counted) / span) if span >= 0.002 else 0
        return 0
