"""bench/RESULTS.md: each benchmark owns one ``## `` section of it and replaces only that section."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def record(section: str, path: Path = RESULTS) -> None:
    """Replace the section whose heading is ``section``'s first line (or append it), leaving the others as they are."""
    heading = section.split("\n", 1)[0]
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(heading + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.rstrip("\n") + ("\n\n" + text[end + 1 :] if end != -1 else "")
    path.write_text(text.rstrip("\n") + "\n")
