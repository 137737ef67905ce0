"""A Merlin-style Fiat–Shamir transcript over SM3.

The transcript is a running SM3 state. It starts with the domain separator
``rongxin/zkp``, the protocol version and the protocol's name; then the caller appends,
*in order*, all public parameters (generator digests), the whole statement and every
prover message, each framed as ``len(label) ‖ label ‖ len(message) ‖ message``.
A challenge is ``SM3(state ‖ "challenge" ‖ label ‖ i)`` for ``i = 0, 1`` (512 bits, reduced
mod ``n``, so the bias is < 2⁻²⁵⁶) and is itself appended, so later challenges depend on
earlier ones. Because prover and verifier run the same sequence of appends, a proof made
for one statement cannot verify for any other, and forgetting to bind an input is visible
in the tests (``tests/zkp/test_transcript.py``): the "Frozen Heart" weakness of hashing
only part of the statement does not arise.

Examples
--------
>>> a = Transcript(b"demo"); a.append_message(b"x", b"1")
>>> b = Transcript(b"demo"); b.append_message(b"x", b"2")
>>> a.challenge_scalar(b"c") != b.challenge_scalar(b"c")
True
"""

from __future__ import annotations

from chain.crypto.sm3 import SM3
from zkp.group import ORDER, Point, scalar_to_bytes

#: Domain separator of every transcript in this package.
DOMAIN = b"rongxin/zkp"
#: Protocol version; bump it when any encoding or transcript order changes.
VERSION = 1


class Transcript:
    """A Fiat–Shamir transcript (see the module docstring)."""

    def __init__(self, protocol: bytes) -> None:
        self._state = SM3()
        self.append_message(b"domain", DOMAIN)
        self.append_u64(b"version", VERSION)
        self.append_message(b"protocol", protocol)

    def append_message(self, label: bytes, message: bytes) -> None:
        """Absorb ``message`` under ``label`` (both length-framed)."""
        self._state.update(len(label).to_bytes(2, "big") + label + len(message).to_bytes(8, "big"))
        self._state.update(message)

    def append_u64(self, label: bytes, value: int) -> None:
        """Absorb an unsigned 64-bit integer."""
        if not 0 <= value < 1 << 64:
            raise ValueError(f"{value} does not fit in 64 bits")
        self.append_message(label, value.to_bytes(8, "big"))

    def append_point(self, label: bytes, point: Point) -> None:
        """Absorb a point's canonical encoding."""
        self.append_message(label, point.encode())

    def append_points(self, label: bytes, points: list[Point]) -> None:
        """Absorb a list of points (count, then each encoding)."""
        self.append_u64(label + b".count", len(points))
        for point in points:
            self.append_point(label, point)

    def append_scalar(self, label: bytes, scalar: int) -> None:
        """Absorb a scalar's canonical encoding."""
        self.append_message(label, scalar_to_bytes(scalar))

    def challenge_scalar(self, label: bytes) -> int:
        """A challenge bound to everything absorbed so far (never zero)."""
        for attempt in range(256):
            head = b"challenge" + len(label).to_bytes(2, "big") + label + attempt.to_bytes(2, "big")
            lo, hi = self._state.copy(), self._state.copy()
            lo.update(head + b"\x00")
            hi.update(head + b"\x01")
            wide = lo.digest() + hi.digest()
            value = int.from_bytes(wide, "big") % ORDER
            if value:
                self.append_message(b"challenge:" + label, wide)
                return value
        raise AssertionError("SM3 produced 256 zero challenges")  # pragma: no cover
