"""Each index row's stored minutiae and, once built, their sketch, kept in step with GalleryIndex's rows.

The minutiae stay in their stored layout (~350 bytes): only the few candidates a search re-scores are
parsed. A sketch (~2 KB, model/minutiae/sketch.py) is built on a row's first use or by the index's
background warming. The index's lock guards every call.
"""

from __future__ import annotations

from fingerprint.model.minutiae import MinutiaeTemplate
from fingerprint.model.minutiae.sketch import Sketch


class MinutiaeColumn:
    def __init__(self) -> None:
        self.stored: list[bytes | None] = []
        self.sketches: list[Sketch | None] = []
        self.nbytes = 0  # of the stored minutiae and the sketches built
        self._warmed = 0  # rows before this one were visited by `unwarmed`

    def append(self, minutiae: MinutiaeTemplate | None) -> None:
        self.stored.append(None if minutiae is None else minutiae.to_bytes())
        self.sketches.append(None)
        self.nbytes += len(self.stored[-1] or b"")

    def move_last_to(self, row: int) -> None:
        """The last row takes `row`'s place (which is dropped); the index removes rows this way."""
        self.nbytes -= len(self.stored[row] or b"") + _size_of(self.sketches[row])
        self.stored[row], self.sketches[row] = self.stored[-1], self.sketches[-1]
        self.stored.pop()
        self.sketches.pop()

    def keep(self, row: int, sketch: Sketch | None) -> None:
        if sketch is not None and self.sketches[row] is None:
            self.sketches[row] = sketch
            self.nbytes += sketch.nbytes

    def unwarmed(self, limit: int) -> tuple[list[int], int]:
        """Rows without a sketch among the next ones not visited yet (at most `limit` of them), and how many
        rows were visited; rows moved by removals meanwhile are built on use."""
        todo: list[int] = []
        start = self._warmed
        while self._warmed < len(self.stored) and len(todo) < limit:
            if self.sketches[self._warmed] is None and self.stored[self._warmed] is not None:
                todo.append(self._warmed)
            self._warmed += 1
        return todo, self._warmed - start


def decoded(stored: list[bytes | None]) -> list[MinutiaeTemplate | None]:
    return [None if s is None else MinutiaeTemplate.from_bytes(s) for s in stored]


def _size_of(sketch: Sketch | None) -> int:
    return 0 if sketch is None else sketch.nbytes
