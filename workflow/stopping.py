"""A stop asked of the driver by a signal (Slurm's pre-timeout USR1, scancel's TERM), kept so it cannot be lost.

The handler raises :class:`DriverSignal` in the main thread, which ends a search wherever it is waiting. But
Python runs a signal handler wherever the main thread happens to be between two bytecodes, and when that is
inside a finaliser (``subprocess.Popen.__del__`` after each ``sacct`` call, a weakref callback) the exception
is printed as "Exception ignored in ..." and the run carries on: Slurm sends its pre-timeout signal once, so
the driver would then be killed at the time limit instead of requeueing itself. The handler therefore also
records the signal, and the driver's loop calls :func:`raise_if_stopped` at every turn and every wait.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable

_received: list[int] = []


class DriverSignal(BaseException):
    """Raised in the main thread when the driver is told to stop (Slurm's pre-timeout signal, scancel)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    _received.append(signum)
    raise DriverSignal(signum)


def stop_on(signums: Iterable[signal.Signals]) -> None:
    """From now on each of ``signums`` stops the driver; a stop recorded before is forgotten."""
    _received.clear()
    for signum in signums:
        signal.signal(signum, _stop)


def raise_if_stopped() -> None:
    """Raise the recorded stop again if its first raise was swallowed; called at the driver's safe points."""
    if _received:
        raise DriverSignal(_received[0])


def forget_stop() -> None:
    """The stop has been handled (the driver is returning): a later search in this process starts afresh."""
    _received.clear()
