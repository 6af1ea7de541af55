"""URLs as signedws shows them: without the secrets they may carry.

One function, `redacted_url`, is the only way a URL that may carry a secret
(a Redis URL's password) reaches a log line, an exception, a ``repr`` or the
command line's output. It parses the URL and rebuilds it with every secret
replaced by ``***``: the password of the userinfo (``redis://user:pw@host``)
and the value of every query parameter whose name says it carries one
(``?password=``, ``?ssl_password=``, ``?token=`` ...; redis-py passes unknown
query parameters to the connection, so ``?password=`` does authenticate).
A URL it cannot parse is not shown at all.

Pure and I/O-free, so the core (`signedws.config`) and the Redis adapter
(`signedws.asyncio.redis`) share it.
"""

from __future__ import annotations

import urllib.parse
from typing import Final

__all__ = ["MASK", "SECRET_NAME_PARTS", "redacted_url"]

#: What a secret is replaced with.
MASK: Final = "***"

#: A query parameter whose name (decoded, lower case) contains one of these
#: carries a secret.
SECRET_NAME_PARTS: Final = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "cred",
    "sig",
)


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def redacted_url(url: str) -> str:
    """``url`` without its secrets, for logs, errors, reprs and output.

    The userinfo's password (or a userinfo without one, which is often the
    secret itself) and the value of every secret-carrying query parameter
    become ``***``; a fragment is replaced by ``***`` too. A URL
    that cannot be parsed gives ``"<unparseable URL>"``, never the input.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            # A lone userinfo (``redis://secret@host``) is often the secret.
            netloc = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
        query = parts.query
        if query:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
            query = urllib.parse.urlencode(
                [(name, MASK if _secret(name) else value) for name, value in pairs],
                safe="*",
            )
        fragment = MASK if parts.fragment else ""
        return urllib.parse.urlunsplit(
            parts._replace(netloc=netloc, query=query, fragment=fragment)
        )
    except (ValueError, TypeError, AttributeError):
        return "<unparseable URL>"
