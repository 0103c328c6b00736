"""The lines of a text, found on demand: what a run reports costs in proportion to where it points, not to the text.

``LineIndex(text)[k]`` finds line ``k`` by counting newlines in large chunks (``str.count``, C speed) from the nearest
line found before, so a 10 MB document is never split into a list of a few hundred thousand strings just to read
the line an error is on. Lines break at ``\\n``, ``\\r\\n`` and ``\\r`` (the LSP's line ends) and carry no line end.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import overload

_CHUNK = 1 << 16


class LineIndex(Sequence[str]):
    __slots__ = ("text", "_lines", "_known", "_offsets")

    def __init__(self, text: str) -> None:
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.text = text
        self._lines: int | None = None
        self._known = [0]  # line numbers whose start offsets are known, ascending
        self._offsets = [0]

    def __len__(self) -> int:
        if self._lines is None:
            text = self.text
            self._lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return self._lines

    def start(self, line: int) -> int | None:
        """The offset in ``text`` where ``line`` (0-based) starts; None past the end of the text."""
        if line < 0:
            return None
        i = bisect.bisect_right(self._known, line) - 1
        at, pos = self._known[i], self._offsets[i]
        text = self.text
        while at < line:  # skip whole chunks while the line is beyond them
            chunk = text.count("\n", pos, pos + _CHUNK)
            if at + chunk >= line:
                break
            if pos + _CHUNK >= len(text):
                return None
            at, pos = at + chunk, pos + _CHUNK
        while at < line:
            found = text.find("\n", pos)
            if found < 0:
                return None
            at, pos = at + 1, found + 1
        if pos >= len(text) and (line > 0 or not text):
            return None  # just past a final line end (or an empty text): no such line
        if i + 1 >= len(self._known) or self._known[i + 1] != line:
            self._known.insert(i + 1, line)
            self._offsets.insert(i + 1, pos)
        return pos

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        start = self.start(index)
        if start is None:
            raise IndexError("line index out of range")
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)]

    def get(self, index: int) -> str | None:
        """Line ``index``, or None when the text has no such line (without counting every line)."""
        try:
            return self[index] if index >= 0 else None
        except IndexError:
            return None

    def __iter__(self) -> Iterator[str]:
        return iter(self.text.splitlines() if self.text else [])
