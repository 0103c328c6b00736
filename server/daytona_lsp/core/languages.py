"""The one language registry: every fact about a language the project runs, declared once.

Everything else derives from :data:`REGISTRY`: the :data:`CodeLanguage` names, the file extensions the CLI and the
server recognise, the LSP ``languageId`` aliases editors send, the ``# %%`` / ``// %%`` cell markers, the file
extension a snippet gets inside the sandbox, and which parser of :mod:`daytona_lsp.core.errors` reads its errors.
The language server also sends :func:`wire` to clients in its ``initialize`` result, so the editor clients need no
tables of their own.

Adding a language = one :class:`Language` entry here, its name in :data:`CodeLanguage`, its error parser (a module of
``core/errors/``, named in ``errors._PARSERS``), and tests. No editor knowledge here (never import pygls or lsprotocol).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

CodeLanguage = Literal["python", "bash", "javascript", "typescript"]


@dataclass(frozen=True, slots=True)
class Language:
    id: CodeLanguage
    """The name used everywhere in the project (settings, wire, CLI ``--language``)."""
    aliases: tuple[str, ...]
    """LSP ``languageId`` values (and short names) editors send for it, besides ``id``; lower case."""
    extensions: tuple[str, ...]
    """File name extensions (lower case, with the dot); the first is the one a snippet gets in the sandbox."""
    cell_marker: str
    """A line starting with it (after indentation) starts a cell."""
    error_parser: Literal["python", "javascript", "typescript", "bash"]
    """Which parser of :mod:`daytona_lsp.core.errors` reads this language's errors."""

    @property
    def snippet_extension(self) -> str:
        """``py``, ``sh``…: the extension of the file a snippet is written to."""
        return self.extensions[0].lstrip(".")


REGISTRY: tuple[Language, ...] = (
    Language("python", ("py", "python3"), (".py", ".pyw"), "# %%", "python"),
    Language("bash", ("sh", "shell", "shellscript", "shell-script", "bash-ts"), (".sh", ".bash"), "# %%", "bash"),
    Language(
        "javascript",
        ("js", "javascriptreact", "jsx", "js-jsx", "js2", "node", "rjsx"),
        (".js", ".mjs", ".cjs", ".jsx"),
        "// %%",
        "javascript",
    ),
    Language(
        "typescript",
        ("ts", "typescriptreact", "tsx", "typescript-tsx", "typescript-ts", "tsx-ts"),
        (".ts", ".mts", ".cts", ".tsx"),
        "// %%",
        "typescript",
    ),
)

LANGUAGES: tuple[CodeLanguage, ...] = get_args(CodeLanguage)

REFUSED: Mapping[str, str] = {
    "zsh": "zsh scripts are not run as bash (their syntax differs); use a .sh / bash file",
    "fish": "fish scripts are not supported; use a .sh / bash file",
    "powershell": "PowerShell is not supported",
}
"""Ids that look runnable but are not, with the reason the user sees."""

_BY_ID: dict[str, Language] = {lang.id: lang for lang in REGISTRY}
_BY_NAME: dict[str, Language] = {name: lang for lang in REGISTRY for name in (lang.id, *lang.aliases)}
_BY_EXTENSION: dict[str, Language] = {ext: lang for lang in REGISTRY for ext in lang.extensions}

assert tuple(_BY_ID) == LANGUAGES, "REGISTRY and CodeLanguage must list the same languages, in the same order"
assert len(_BY_NAME) == sum(1 + len(lang.aliases) for lang in REGISTRY), "an alias names two languages"
assert len(_BY_EXTENSION) == sum(len(lang.extensions) for lang in REGISTRY), "an extension names two languages"


def get(language: CodeLanguage) -> Language:
    """The entry of a known language id."""
    return _BY_ID[language]


def by_name(name: str | None) -> Language | None:
    """The language an id or alias (``js``, ``shellscript``, ``typescriptreact``…) names; None if none."""
    return _BY_NAME.get((name or "").strip().lower())


def by_path(path: str | os.PathLike[str]) -> Language | None:
    """The language of a file (path or ``file://`` URI) from its extension; None if unknown."""
    name = os.path.basename(os.fspath(path))
    dot = name.rfind(".")
    return _BY_EXTENSION.get(name[dot:].lower()) if dot > 0 else None  # (PurePath(path).suffix, without a PurePath)


def language_for_path(path: str | os.PathLike[str]) -> CodeLanguage | None:
    """The language id of a file from its extension (``.py``, ``.sh``, ``.js``/``.mjs``…), or ``None``."""
    lang = by_path(path)
    return lang.id if lang else None


def refusal(name: str | None) -> str | None:
    """Why an id the registry refuses (``zsh``…) cannot run; None for any other id."""
    return REFUSED.get((name or "").strip().lower())


def for_document(language_id: str | None, path: str) -> Language | None:
    """A document's language: the file extension decides when it names a language, else the client's ``languageId``.

    Editors that send one id per server (eglot) or a generic one keep a ``.sh`` from being run as Python; a file
    without a known extension (``script`` with a shebang, ``untitled:1``) keeps the client's id.
    """
    return by_path(path) or by_name(language_id)


def wire() -> list[dict[str, Any]]:
    """The registry as clients get it (``initialize`` result ``experimental.daytona.languages``)."""
    return [
        {
            "id": lang.id,
            "languageIds": [lang.id, *lang.aliases],
            "extensions": list(lang.extensions),
            "cellMarker": lang.cell_marker,
        }
        for lang in REGISTRY
    ]
