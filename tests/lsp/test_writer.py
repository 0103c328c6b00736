"""The server's stdout writer: notifications soon after a request leave with its response (or alone within HOLD_S of
the request) in one write, in order; other notifications leave on the next turn, a response at once; nothing is lost at
exit; a closed client pipe is no error."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import Callable

from daytona_lsp.lsp.writer import HOLD_S, CoalescingWriter


class Recorder(io.RawIOBase):
    """A stream that keeps each write apart (what the client's pipe would see as separate wake-ups)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.on_write: Callable[[], object] = lambda: None

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to closed file")
        self.writes.append(bytes(data))
        self.on_write()
        return len(data)


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_held_notifications_leave_with_the_next_response_in_one_write_in_order() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    writer.request_arrived()  # daytona.run
    for name in (b"runStarted;", b"output;", b"runFinished;"):  # a short run's notifications, turn by turn
        with writer.holding():
            writer.write(name)
        await next_turn()
    assert out.writes == []  # held (HOLD_S is far longer than a few loop turns)
    writer.write(b"response")  # leaves at once, and they with it
    assert out.writes == [b"runStarted;output;runFinished;response"]


async def test_a_notification_not_held_leaves_on_the_next_turn_with_what_waited() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    writer.request_arrived()  # daytona.run
    with writer.holding():
        writer.write(b"diagnostics cleared;")  # held for the answer
    with writer.holding(answer=False):
        writer.write(b"runStarted")  # the sandbox has the run: the client may read this meanwhile
    assert out.writes == []
    await next_turn()
    assert out.writes == [b"diagnostics cleared;runStarted"]  # in order, one write, without waiting for the answer
    with writer.holding():
        writer.write(b"output;")  # held again (holding(answer=False) lasted one block)
    await next_turn()
    writer.write(b"response")
    assert out.writes == [b"diagnostics cleared;runStarted", b"output;response"]


async def test_a_held_notification_leaves_alone_within_the_hold_time() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    loop = asyncio.get_running_loop()
    written = loop.create_future()
    out.on_write = lambda: written.done() or written.set_result(loop.time())
    started = loop.time()
    writer.request_arrived()
    with writer.holding():
        writer.write(b"output")
    await asyncio.wait_for(written, 5)
    assert out.writes == [b"output"]
    assert written.result() - started >= HOLD_S * 0.9  # (the loop's clock may round a little)


async def test_a_notification_without_a_request_waiting_for_its_answer_leaves_on_the_next_turn() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    with writer.holding():
        writer.write(b"output of a run that lasts")  # no request arrived lately
    await next_turn()
    assert out.writes == [b"output of a run that lasts"]
    writer.request_arrived()  # daytona.sendInput
    with writer.holding():
        writer.write(b"echo;")
    writer.write(b"its answer")
    await next_turn()
    with writer.holding():
        writer.write(b"the program's answer")  # after the request was answered: not held
    await next_turn()
    assert out.writes == [b"output of a run that lasts", b"echo;its answer", b"the program's answer"]


async def test_a_response_leaves_at_once_and_a_later_notification_apart() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    writer.write(b"response")
    assert out.writes == [b"response"]  # no loop turn waited for: the client waits for it
    with writer.holding():
        writer.write(b"later")  # after the answer: nothing to wait for
    await next_turn()
    assert out.writes == [b"response", b"later"]


async def test_flush_writes_what_is_pending_at_once() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    writer.write(b"shutdown response")
    writer.flush()  # as the server does before it exits
    assert out.writes == [b"shutdown response"]
    with writer.holding():
        writer.write(b"exit notification")
    writer.flush()
    assert out.writes == [b"shutdown response", b"exit notification"]
    writer.write(b"next")
    await next_turn()
    assert out.writes == [b"shutdown response", b"exit notification", b"next"]  # nothing written twice


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


async def test_a_message_after_close_is_dropped_without_an_error() -> None:
    out = Recorder()
    writer = CoalescingWriter(out)
    writer.close()
    writer.write(b"late")  # e.g. a notification while the server shuts down
    writer.flush()
    assert out.writes == []
