"""JSON documents read from files and peers: parsed strictly and boundedly.

Every JSON text signedws reads (key and keyring files, JWKS, revocation
files, Redis revocation messages and members) goes through `parse_json`:

- an object with the same member name twice is refused: ``json.loads`` keeps
  the last one silently, so a keyring with an issuer listed twice would lose
  the first list's keys without a word;
- nesting too deep for the parser is refused as bad input (``json.loads``
  raises ``RecursionError``, which no caller expects);
- with ``max_size``, a longer text is refused before it is parsed.

Every refusal is a ``ValueError`` (`JSONDocumentError`), like the
``json.JSONDecodeError`` of invalid JSON, so a caller turns all of them into
its own typed error with one ``except ValueError``. Messages name the rule and
never quote the document.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JSONDocumentError", "parse_json"]


class JSONDocumentError(ValueError):
    """A JSON text refused by `parse_json` for something other than syntax."""


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for name, value in pairs:
        if name in document:
            raise JSONDocumentError(f"duplicate member name {name!r:.60}")
        document[name] = value
    return document


def parse_json(text: str | bytes, *, max_size: int | None = None) -> Any:
    """The value of the JSON ``text``.

    Raises:
        ValueError: invalid JSON (``json.JSONDecodeError``), or a
            `JSONDocumentError`: a duplicate member name, nesting too deep,
            or a text longer than ``max_size`` (characters or bytes).
    """
    if max_size is not None and len(text) > max_size:
        raise JSONDocumentError(f"JSON text of {len(text)} over the limit of {max_size}")
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except RecursionError:
        raise JSONDocumentError("JSON nested too deeply") from None
