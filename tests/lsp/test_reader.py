"""The server's input framing (daytona_lsp.lsp.reader): bodies come out whole whatever the chunks, headers in any
case, malformed input is skipped without losing what follows."""

from __future__ import annotations

from daytona_lsp.lsp.reader import MAX_HEADER_BYTES, Framer


def frame(body: bytes, header: bytes = b"Content-Length") -> bytes:
    return b"%s: %d\r\n\r\n%s" % (header, len(body), body)


def test_bodies_come_out_whole_whatever_the_chunks() -> None:
    bodies = [b'{"a": 1}', '{"b": "é€😀"}'.encode(), b"{}" * 3000]
    stream = b"".join(frame(b) for b in bodies)
    for size in (1, 2, 7, 4096, len(stream)):
        framer = Framer()
        got = [body for i in range(0, len(stream), size) for body in framer.feed(stream[i : i + size])]
        assert got == bodies, size


def test_header_names_in_any_case_and_other_headers() -> None:
    framer = Framer()
    stream = b"content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}"
    assert list(framer.feed(stream + frame(b"[]", b"CONTENT-LENGTH"))) == [b"{}", b"[]"]


def test_malformed_headers_are_skipped_and_what_follows_is_read() -> None:
    framer = Framer()
    assert list(framer.feed(b"X-Other: 1\r\n\r\n" + frame(b"{}"))) == [b"{}"]  # no Content-Length
    assert list(framer.feed(b"Content-Length: -3\r\n\r\n" + frame(b"{}"))) == [b"{}"]
    junk = b"x" * (MAX_HEADER_BYTES + 10) + b"\n"  # a stray write without any header
    assert list(framer.feed(junk)) == []
    assert list(framer.feed(frame(b"{}"))) == [b"{}"]
