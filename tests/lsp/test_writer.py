"""The server's stdout writer: messages of a few consecutive loop turns leave in one write, in order; nothing is lost
at exit; a closed client pipe is no error."""

from __future__ import annotations

import asyncio
import io
import os
import threading

from daytona_lsp.lsp.writer import TURNS, CoalescingWriter


class Recorder(io.RawIOBase):
    """A stream that keeps each write apart (what the client's pipe would see as separate wake-ups)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_messages_of_consecutive_turns_leave_in_one_write_in_order() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    for i in range(TURNS):  # as a run's end: runFinished, then the progress end, then the response, turn by turn
        writer.write(f"m{i};".encode())
        await next_turn()
    while not out.writes:
        await next_turn()
    assert out.writes == [b"".join(f"m{i};".encode() for i in range(TURNS))]
    writer.write(b"later")  # a new batch
    while len(out.writes) < 2:
        await next_turn()
    assert out.writes[1] == b"later"


async def test_flush_writes_what_is_pending_at_once() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    writer.write(b"shutdown response")
    writer.flush()  # as the server does before it exits
    assert out.writes == [b"shutdown response"]
    for _ in range(TURNS + 1):
        await next_turn()
    assert out.writes == [b"shutdown response"]  # not twice


def test_a_write_outside_the_loop_goes_out_at_once() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    thread = threading.Thread(target=writer.write, args=(b"from a thread",))
    thread.start()
    thread.join()
    assert out.writes == [b"from a thread"]


async def test_a_closed_client_pipe_loses_the_messages_without_an_error() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    writer = CoalescingWriter(os.fdopen(write_end, "wb", buffering=0))
    writer.write(b"x" * 100)
    writer.flush()  # EPIPE: logged, not raised
    writer.write(b"y")
    writer.close()
