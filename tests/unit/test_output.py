"""OutputBuffer: head and tail kept, middle dropped with a marker, bounded memory, UTF-8 safe."""

from __future__ import annotations

import pytest

from daytona_lsp.core.output import OutputBuffer, cap_text, truncation_marker


def test_small_output_is_kept_whole_and_streamed_whole():
    buf = OutputBuffer(100)
    assert buf.write("hello ") == "hello "
    assert buf.write("world") == "world"
    assert buf.text() == "hello world"
    assert not buf.truncated
    assert buf.unstreamed_text() == ""


def test_output_past_the_head_is_not_streamed_but_kept_until_the_cap():
    buf = OutputBuffer(10)  # head 5, tail 5
    assert buf.write("abcdefgh") == "abcde"
    assert buf.text() == "abcdefgh"
    assert not buf.truncated
    assert buf.unstreamed_text() == "fgh"


def test_large_output_keeps_head_and_tail_with_a_marker_counting_dropped_bytes():
    buf = OutputBuffer(10)
    for ch in "abcdefghijklmnopqrstuvwxyz":
        buf.write(ch)
    assert buf.truncated
    assert buf.total_bytes == 26
    assert buf.text() == "abcde" + truncation_marker(16) + "vwxyz"
    assert buf.unstreamed_text() == truncation_marker(16) + "vwxyz"
    assert "16 bytes" in truncation_marker(16)


def test_streamed_parts_plus_unstreamed_text_add_up_to_text():
    buf = OutputBuffer(64)
    streamed = "".join(buf.write(f"line {i}\n") for i in range(100))
    assert streamed + buf.unstreamed_text() == buf.text()


@pytest.mark.parametrize("max_bytes", [7, 8, 9, 10, 11])
def test_multibyte_characters_are_never_split(max_bytes):
    buf = OutputBuffer(max_bytes)
    streamed = buf.write("é€😀" * 5)
    streamed.encode("utf-8")  # valid: no half characters streamed
    text = buf.text()
    assert "\ufffd" not in text
    assert text.startswith(streamed)


def test_memory_stays_bounded_for_a_huge_flood():
    buf = OutputBuffer(1024)
    chunk = "x" * 65536
    for _ in range(100):
        buf.write(chunk)
    assert buf.total_bytes == 6_553_600
    assert len(buf._tail) <= 512
    assert len(buf.text()) < 1024 + 100


def test_empty_writes_are_ignored_and_tiny_caps_rejected():
    buf = OutputBuffer(10)
    assert buf.write("") == ""
    assert buf.total_bytes == 0
    with pytest.raises(ValueError):
        OutputBuffer(1)


def test_cap_text_caps_complete_output():
    assert cap_text("short", 100) == ("short", False)
    text, truncated = cap_text("a" * 50 + "b" * 50, 20)
    assert truncated and text.startswith("a" * 10) and text.endswith("b" * 10)
