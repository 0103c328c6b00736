"""The README stays true: its settings table lists exactly the server's settings with their defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

from daytona_lsp.lsp.settings import default_settings_wire, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def _settings_table() -> dict[str, object]:
    rows = re.findall(r"^\| `daytona\.([\w.]+)` \| `([^`]*)` \|", README.read_text(), flags=re.M)
    return {name: json.loads(default) for name, default in rows}


def test_readme_settings_table_matches_server_defaults():
    expected = {k: (list(v) if isinstance(v, tuple) else v) for k, v in default_settings_wire().items()}
    assert _settings_table() == expected


def test_readme_documents_both_commands_and_ci_runs_the_test_command():
    text = README.read_text()
    assert "daytona-lsp run examples/hello.py" in text
    assert "bash scripts/test\n" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "scripts/test" in ci


def test_readme_settings_table_is_the_one_generated_from_the_declarations():
    assert markdown_table() in README.read_text(), "regenerate it with daytona_lsp.lsp.settings.markdown_table()"
