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
- What waits is bounded: :data:`QUEUE_TIME` of the rate, at least :data:`MIN_QUEUE` and at
  most :data:`MAX_QUEUE` bytes. :meth:`Pacer.offer` refuses a packet that would not fit; it is
  lost, as on a wire, and the consumer's window learns of it from its timeout. The bound is
  generous on purpose: a consumer that meets delay adapts its timer to it, where each loss costs
  it a retransmission timeout (a stream face holds up to 64 MiB for the same reason).
- Fragments sent again (``offer(..., again=True)``) go after the packet being sent and ahead of
  the rest, in the order asked for, and one that waits already is not queued twice. They are
  never refused: a receiver is waiting for them, and they are bounded already (each at most
  once, of what the sender keeps: :mod:`ccn.frag`).

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
#: Bytes that may wait, in seconds of the paced rate (and at least, at most, this many bytes).
QUEUE_TIME = 2.0
MIN_QUEUE = 1024 * 1024
MAX_QUEUE = 16 * 1024 * 1024
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
        "_again",
        "_again_set",
        "_current",
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
        # Packets waiting, each as its datagrams: the one begun, fragments sent again (in the
        # order asked for), then the rest.
        self._current: deque[bytes] = deque()
        self._again: deque[deque[bytes]] = deque()
        self._again_set: set[bytes] = set()  # the datagrams in _again
        self._queue: deque[deque[bytes]] = deque()
        self._tokens = 0.0
        self._t = 0.0  # when the tokens were last counted
        self._feedback = 0.0  # when the last report came
        self._grown = 0.0  # when the rate last grew

    @property
    def active(self) -> bool:
        return self.rate is not None

    @property
    def queued(self) -> int:
        """Packets waiting (in part, for the one begun)."""
        return bool(self._current) + len(self._again) + len(self._queue)

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

    def offer(self, datagrams: list[bytes], now: float, *, again: bool = False) -> bool:
        """Queue one packet's ``datagrams``; with ``again`` (fragments sent again, which a
        receiver is waiting for), after the packet begun and those sent again before, ahead of
        the rest: cutting into a packet would stop its fragments for a while, and its receiver
        would ask for the rest of it, which is on its way. A datagram to send again that is
        already waiting is not queued twice (a receiver asks again when the fragments it asked
        for are slow to come). False if it does not fit: dropped and counted."""
        if again:
            waiting = self._again_set
            datagrams = [d for d in datagrams if d not in waiting]
            waiting.update(datagrams)
            if not datagrams:
                return True
        size = sum(len(d) for d in datagrams)
        self._adapt(now)
        rate = self.rate
        bound = MIN_QUEUE if rate is None else min(MAX_QUEUE, max(MIN_QUEUE, rate * QUEUE_TIME))
        if not again and self.queued_bytes and self.queued_bytes + size > bound:
            self.dropped += 1
            return False
        (self._again if again else self._queue).append(deque(datagrams))
        self.queued_bytes += size
        return True

    def take(self, now: float) -> list[bytes]:
        """The datagrams that may go now, in order (all of them while idle)."""
        self._adapt(now)
        paced = self.rate is not None
        if paced:
            self._count(now)
        out: list[bytes] = []
        current = self._current
        while True:
            if not current:
                if self._again:
                    current = self._current = self._again.popleft()
                    self._again_set.difference_update(current)
                elif self._queue:
                    current = self._current = self._queue.popleft()
                else:
                    break
            size = len(current[0])
            # (a hair of slack: the tokens counted at the time next_time gave may fall short
            # of the datagram by a rounding error, and nothing would ever go)
            if paced and size > self._tokens + 1e-6:
                break
            out.append(current.popleft())
            self._tokens -= size
            self.queued_bytes -= size
        if not paced:
            self._tokens = 0.0
        return out

    def next_time(self, now: float) -> float | None:
        """When the first datagram waiting may go (None if none waits)."""
        head = self._head()
        if head is None:
            return None
        rate = self.rate
        if rate is None:
            return now
        self._count(now)
        missing = len(head) - self._tokens
        return now if missing <= 0 else now + missing / rate

    def _head(self) -> bytes | None:
        """The datagram that goes next, if any (no packet waits empty)."""
        if self._current:
            return self._current[0]
        for packets in (self._again, self._queue):
            if packets:
                return packets[0][0]
        return None

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
