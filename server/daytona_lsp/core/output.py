"""Output capping shared by every backend: keep the head and the tail, drop the middle with a clear marker."""

from __future__ import annotations

DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024


def truncation_marker(dropped: int) -> str:
    return f"\n… [daytona-lsp: {dropped} bytes of output truncated] …\n"


class OutputBuffer:
    """Collects a run's output in bounded memory (about ``2 * max_bytes``).

    The first ``max_bytes // 2`` bytes (the head) are kept and passed on for streaming; after that only the last
    ``max_bytes // 2`` bytes (the tail) are kept. ``text()`` gives head + marker + tail.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        if max_bytes < 2:
            raise ValueError("max_bytes must be >= 2")
        self.max_bytes = max_bytes
        self._head_limit = max_bytes // 2
        self._tail_limit = max_bytes - self._head_limit
        self._head: list[str] = []
        self._head_bytes = 0
        self._tail = bytearray()
        self._dropped = 0
        self.total_bytes = 0

    @property
    def truncated(self) -> bool:
        return self._dropped > 0

    def write(self, text: str) -> str:
        """Add a chunk; return the part of it that fits in the head (what should still be streamed)."""
        if not text:
            return ""
        data = text.encode("utf-8", "surrogateescape")
        self.total_bytes += len(data)
        room = self._head_limit - self._head_bytes
        streamed = ""
        if room > 0:
            part = utf8_head(data, room)
            streamed = part.decode("utf-8", "surrogateescape")
            self._head.append(streamed)
            self._head_bytes += len(part)
            data = data[len(part) :]
        if data:
            self._tail += data
            overflow = len(self._tail) - self._tail_limit
            if overflow > 0:
                del self._tail[:overflow]
                self._dropped += overflow
        return streamed

    def text(self) -> str:
        return "".join(self._head) + self.unstreamed_text()

    def text_from(self, offset: int) -> str:
        """What :meth:`text` holds from byte ``offset`` of the output on (a marker for what was dropped between).

        A consumer that passed on the first ``offset`` bytes of the output itself sends this at the end."""
        tail_start = self.total_bytes - len(self._tail)
        if offset >= tail_start:
            return bytes(self._tail[offset - tail_start :]).decode("utf-8", "replace")
        head = "".join(self._head).encode("utf-8", "surrogateescape")[offset:].decode("utf-8", "surrogateescape")
        dropped = tail_start - max(offset, self._head_bytes)
        if dropped <= 0:
            return head + bytes(self._tail).decode("utf-8", "replace")
        tail = bytes(self._tail)
        i = 0
        while i < len(tail) and (tail[i] & 0xC0) == 0x80:  # drop a partial character at the start of the tail
            i += 1
        return head + truncation_marker(dropped) + tail[i:].decode("utf-8", "replace")

    def partial_line(self, max_bytes: int = 1024) -> str:
        """The output's unfinished last line (``""`` when it ends with a newline): a program's prompt."""
        return self.text_from(max(0, self.total_bytes - max_bytes)).rsplit("\n", 1)[-1]

    def unstreamed_text(self) -> str:
        """The part of :meth:`text` after the head: what :meth:`write` did not return for streaming ('' if none).

        A backend that streams the head while the code runs sends this at the end, so that what was streamed adds
        up to :meth:`text`.
        """
        tail = bytes(self._tail)
        if not self._dropped:
            return tail.decode("utf-8", "replace")
        # drop a partial character at the start of the tail
        i = 0
        while i < len(tail) and (tail[i] & 0xC0) == 0x80:
            i += 1
        return truncation_marker(self._dropped) + tail[i:].decode("utf-8", "replace")


def utf8_head(data: bytes, max_bytes: int) -> bytes:
    """The first ``max_bytes`` (at most) of ``data``, never splitting a UTF-8 sequence."""
    part = data[: max(0, max_bytes)]
    if len(part) < len(data):
        while part and (data[len(part)] & 0xC0) == 0x80:
            part = part[:-1]
    return part


def cap_text(text: str, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> tuple[str, bool]:
    """Cap an already complete output; return ``(text, truncated)``."""
    buf = OutputBuffer(max_bytes)
    buf.write(text)
    return buf.text(), buf.truncated
