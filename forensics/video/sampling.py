"""Which decoded frame each sample shows, by the rule of ffmpeg's ``fps`` filter.

A stream sampled at ``rate`` frames per second has one sample per *slot* ``k``: the
picture shown at ``k / rate`` seconds. A frame at ``t`` seconds falls in slot
``round(t × rate)`` (halves rounded away from zero, as the filter's default ``near``
rounding does); slot ``k`` shows the last frame, in display order, whose slot is at most
``k``. Slots before the first frame show the first frame (the command-line tool's
constant-rate output fills them), and the last slot is the one before the end of the
last frame (its time plus its duration). This is what :func:`forensics.video.decode.iter_frames`
gets from the ``fps`` filter; :mod:`forensics.video.avdecode` applies it to frames it
decodes itself, and uses :func:`needed` to leave undecoded the non-reference frames no
slot shows.

Examples
--------
>>> from fractions import Fraction
>>> slot = slot_of(Fraction(12, 100), Fraction(4))    # 0.12 s at 4 frames/s: slot 0.48 → 0
>>> slot, slot_of(Fraction(125, 1000), Fraction(4))   # 0.125 s: 0.5 rounds up
(0, 1)
>>> needed(Fraction(12, 100), Fraction(16, 100), Fraction(4))   # the last frame before slot 1
True
>>> needed(Fraction(8, 100), Fraction(12, 100), Fraction(4))
False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Generic, TypeVar

__all__ = ["SlotPicker", "needed", "slot_of"]

T = TypeVar("T")


def slot_of(t: Fraction, rate: Fraction) -> int:
    """The slot of a frame at ``t`` seconds: ``t × rate`` rounded to nearest, halves away from zero."""
    x = t * rate
    sign = -1 if x < 0 else 1
    return sign * int(abs(x) + Fraction(1, 2))


def needed(t: Fraction, t_next: Fraction | None, rate: Fraction) -> bool:
    """Whether a frame at ``t``, followed in display order by one at ``t_next``, is shown by a slot.

    It is shown by the slots from its own to the one before its successor's, those of them
    at or after 0; a frame with no known successor (``None``) counts as shown.
    """
    if t_next is None:
        return True
    first = max(slot_of(t, rate), 0)
    return slot_of(t_next, rate) > first


@dataclass
class SlotPicker(Generic[T]):
    """Streams frames (in display order) into slots, holding one frame at a time.

    ``push(t, item)`` returns the slots that the frame before it settles, as
    ``(slot, item)`` pairs; ``finish(end)`` those left when the stream ends at ``end``
    seconds. Frames out of order (a time not after the last one) replace the held frame,
    as the filter keeps the later of two frames in one slot.

    Examples
    --------
    >>> from fractions import Fraction as F
    >>> p = SlotPicker(F(2))
    >>> [p.push(F(i, 10), i) for i in range(0, 10, 3)]
    [[], [(0, 0)], [], [(1, 6)]]
    >>> p.finish(F(13, 10))
    [(2, 9)]
    """

    rate: Fraction
    next_slot: int = 0
    _held: tuple[int, T] | None = field(default=None, repr=False)

    def push(self, t: Fraction, item: T) -> list[tuple[int, T]]:
        """Add the frame shown at ``t`` seconds; the slots now settled."""
        s = slot_of(t, self.rate)
        out = self._emit(s) if self._held is not None else []
        self._held = (s, item)
        return out

    def finish(self, end: Fraction) -> list[tuple[int, T]]:
        """The slots up to (not including) the one of ``end``, the end of the last frame."""
        if self._held is None:
            return []
        out = self._emit(slot_of(end, self.rate))
        self._held = None
        return out

    def _emit(self, upto: int) -> list[tuple[int, T]]:
        assert self._held is not None
        item = self._held[1]
        out = [(k, item) for k in range(self.next_slot, upto)]
        self.next_slot = max(self.next_slot, upto)
        return out
