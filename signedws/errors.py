"""Errors raised by signedws.

Two branches, as h11 splits local from remote protocol errors::

    SignedWSError
    ├── Rejected                 the peer sent something the protocol refuses
    │                            (carries a stable Code; see SPEC.md §9)
    ├── UsageError (ValueError)  the caller misused the API (bad key length,
    │   │                        bad configuration, counter exhausted, ...)
    │   ├── KeyFormatError       a key or key set document could not be loaded
    │   └── InvalidState (RuntimeError)  a session used in the wrong state
    │                            (e.g. a hello given to a connected client)
    ├── Refused                  a client was refused in a way retrying cannot fix
    ├── ConnectionLost           a client's connection ended and it did not reconnect
    │   └── RepeatedFailure      connections kept ending the same way, no progress
    └── ClientClosed             a client was closed (by the application or the server)

`Rejected` is the only exception the verifier raises for any input bytes. Its
`code` says what failed and maps to a WebSocket close code and an opaque reason
for the peer; its `detail` is for the server's log. Neither ever contains a key,
a token, a frame key or a payload.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

__all__ = [
    "ClientClosed",
    "Code",
    "ConnectionLost",
    "InvalidState",
    "KeyFormatError",
    "Refused",
    "Rejected",
    "RepeatedFailure",
    "SignedWSError",
    "UsageError",
    "codes_for_close",
    "explain_close",
    "explain_status",
]


class Code(enum.Enum):
    """Stable rejection codes (SPEC.md §9).

    Each member's value is ``(number, close_code, peer_reason)``. The name (in
    lower case, see `Code.id`) and the number are stable across versions; close
    codes and reasons are what a peer is told and are deliberately coarse.
    """

    # 1xx: frame structure
    FRAME_TOO_LARGE = (100, 4413, "frame too large")
    MALFORMED = (101, 4400, "bad frame")
    UNSUPPORTED_VERSION = (102, 4400, "bad frame")
    SCHEME_MISMATCH = (103, 4400, "bad frame")
    # 2xx: connection binding
    NONCE_MISMATCH = (200, 4401, "unauthorized")
    NONCE_EXPIRED = (201, 4410, "connection expired")
    NONCE_INVALID = (202, 4401, "unauthorized")
    REPLAY = (203, 4409, "replay")
    TIMESTAMP_SKEW = (204, 4425, "timestamp out of range")
    # 3xx: credentials
    CREDENTIAL_MALFORMED = (300, 4400, "bad frame")
    UNKNOWN_ISSUER = (301, 4401, "unauthorized")
    UNKNOWN_KEY = (302, 4401, "unauthorized")
    CREDENTIAL_INVALID = (303, 4401, "unauthorized")
    WEAK_KEY = (304, 4401, "unauthorized")
    CREDENTIAL_EXPIRED = (305, 4419, "credential not valid now")
    CREDENTIAL_NOT_YET_VALID = (306, 4419, "credential not valid now")
    CREDENTIAL_REVOKED = (307, 4403, "forbidden")
    AUDIENCE_MISMATCH = (308, 4401, "unauthorized")
    CREDENTIAL_MISMATCH = (309, 4401, "unauthorized")
    # 4xx: frame authentication
    BAD_TAG = (400, 4401, "unauthorized")
    BAD_SIGNATURE = (401, 4401, "unauthorized")
    # 5xx: session
    ACK_INVALID = (500, 4400, "bad frame")
    FIRST_FRAME_TIMEOUT = (501, 4408, "timeout")
    IDLE_TIMEOUT = (502, 4408, "timeout")
    TOO_MANY_FAILURES = (503, 4429, "too many failures")
    SERVER_BUSY = (504, 4503, "server busy")

    @property
    def id(self) -> str:
        """The stable string identifier, e.g. ``"bad_tag"``."""
        return self.name.lower()

    @property
    def number(self) -> int:
        """The stable numeric identifier, e.g. ``400``."""
        return self.value[0]

    @property
    def close_code(self) -> int:
        """The WebSocket close code a server closes the connection with."""
        return self.value[1]

    @property
    def peer_reason(self) -> str:
        """The opaque close reason sent to the peer."""
        return self.value[2]

    @classmethod
    def from_id(cls, code_id: str) -> Code:
        """Look a code up by its string identifier.

        Raises:
            UsageError: if no code has that identifier.
        """
        try:
            return cls[code_id.upper()]
        except KeyError:
            raise UsageError(f"unknown rejection code {code_id!r}") from None


class SignedWSError(Exception):
    """Base class of every exception signedws raises on purpose."""


class Rejected(SignedWSError):
    """The peer sent something the protocol refuses.

    Attributes:
        code: what failed (stable; see `Code`).
        detail: a log line for the server operator. It names fields, sizes and
            identifiers (issuer, key id, credential id, counter), never a
            secret, a token, a signature or a payload.

    ``Rejected(code, detail)``: the detail is a finished string. A template
    and its arguments, formatted only when read, would save ~0.4 µs per
    rejection (measured: construction 424 ns with a template, 857 ns with an
    f-string, median of 15 rounds, issue 15), but a rejection closes its
    connection: a peer pays a connection (TCP and WebSocket handshakes, tens of
    µs at least) for each one, so the saving cannot pay.

    Construction runs no Python code (the exception's ``args`` hold the code
    and the detail).
    """

    __slots__ = ()

    if TYPE_CHECKING:  # BaseException's C __init__ stores the arguments in ``args``.

        def __init__(self, code: Code, detail: str = "", /) -> None: ...

    @property
    def code(self) -> Code:
        """What failed."""
        code: Code = self.args[0]
        return code

    @property
    def detail(self) -> str:
        """The log line for the server operator."""
        args = self.args
        detail: str = args[1] if len(args) > 1 else ""
        return detail

    def __str__(self) -> str:
        detail = self.detail
        return f"{self.code.id}: {detail}" if detail else self.code.id

    def __repr__(self) -> str:
        return f"Rejected({self.code.id!r}, {self.detail!r})"


class UsageError(SignedWSError, ValueError):
    """The caller misused the API: the fault is local, not the peer's."""


class KeyFormatError(UsageError):
    """A key, key file or key set (JWKS) document could not be loaded."""


class InvalidState(UsageError, RuntimeError):
    """A session was used in a state that does not allow the call (as
    websockets' ``InvalidState``): a bug in the code driving it. For example a
    server frame before the client's first accepted frame, or a hello given to
    a client session that is connected already."""


#: What each close code a client may meet means, and what to do about it: the
#: first sentence says what happened, the second what the person can do. The
#: server is coarse on purpose (SPEC.md §9): several codes share 4401.
_CLOSE_ADVICE: dict[int, str] = {
    1000: "the server ended the connection normally.",
    1001: "the server is going away (restarting or draining). The client reconnects.",
    1005: "the server closed without a close code.",
    1006: "the connection dropped without a close frame (network, proxy or server "
    "crash). The client reconnects.",
    1009: "a message was larger than the server accepts (its proxy or ASGI server "
    "limit). Send smaller messages.",
    1011: "the server hit an internal error. The client reconnects; if it repeats, "
    "the server's log says why.",
    1012: "the server is restarting. The client reconnects.",
    1013: "the server asks to try again later. The client reconnects.",
    1014: "a gateway could not reach the server. The client reconnects.",
    4400: "the server could not parse a frame (a client bug or a protocol version "
    "mismatch). Update the client; retrying sends the same frames.",
    4401: "the server did not accept the credential or a frame's MAC or signature. "
    "Check that the credential is for this server's audience (its aud), comes from "
    "an issuer and key this server's keyring trusts, and matches the client's key; "
    "then get a new credential.",
    4403: "the credential was revoked. Get a new one from the issuer (log in again); "
    "if the subject was revoked, ask its administrator.",
    4408: "no valid frame arrived in time (first-frame or idle timeout). The client "
    "reconnects; send keepalives on a quiet connection.",
    4409: "a frame reused a counter (a replay, or two signers on one connection). "
    "Reconnect with a single signer per connection.",
    4410: "the connection's nonce expired. The client reconnects.",
    4413: "a frame was larger than the server's max_frame_size (in its hello). "
    "Send smaller messages.",
    4419: "the credential is expired or not yet valid. Refresh it (connect's "
    "refresh=), and check this machine's clock.",
    4425: "a frame's timestamp was too far from the server's time. Synchronise this "
    "machine's clock (NTP).",
    4429: "too many invalid frames on this connection. Fix what sends them, then reconnect.",
    4503: "the server is at its connection limit. The client retries later.",
}

_STATUS_ADVICE: dict[int, str] = {
    400: "the server refused the WebSocket handshake as malformed, often a missing "
    "signedws.v1 subprotocol. Use a signedws client, at the right URL.",
    401: "the handshake needs authentication that this client does not send: check "
    "the URL (signedws authenticates frames, not handshakes).",
    403: "the server refused the page's Origin (the CSWSH defence). Add the origin "
    "to the server's origins ([server].origins), or for a client without a "
    "browser, allow_no_origin or an allowed Origin.",
    404: "no WebSocket endpoint at this path. Check the URL.",
    426: "the request arrived without a WebSocket upgrade (a proxy may have dropped "
    "the Upgrade header). Check the proxy configuration.",
    429: "the server or a proxy is rate limiting. The client retries later.",
    503: "the server is busy (at its connection limit) or draining. The client retries later.",
}


def explain_close(close_code: int | None, reason: str = "") -> str:
    """What a connection closed with ``close_code`` (None: no close frame)
    and ``reason`` means, and what the person can do: ``"close code 4401
    (unauthorized; one of: nonce_mismatch, ...): the server did not accept
    ..."``. The rejection codes named are the ones SPEC.md §9 maps to that
    close code and reason."""
    code = 1006 if close_code is None else close_code
    codes = [
        c.id for c in Code if c.close_code == code and (not reason or c.peer_reason == reason)
    ]
    shown = reason or "no reason"
    if len(codes) == 1:
        shown += f"; {codes[0]}"
    elif codes:
        shown += f"; one of: {', '.join(codes)}"
    advice = _CLOSE_ADVICE.get(code)
    if advice is None:
        advice = (
            "an application-defined close code." if 4000 <= code < 5000 else "a protocol error."
        )
    return f"close code {code} ({shown}): {advice}"


def explain_status(status: int, reason: str = "") -> str:
    """What an opening handshake refused with HTTP ``status`` means, with
    the server's ``reason`` text, and what the person can do."""
    advice = _STATUS_ADVICE.get(status)
    if advice is None:
        advice = (
            "the server failed. The client retries later."
            if status >= 500
            else "the server refused the WebSocket handshake. Check the URL."
        )
    return f"HTTP {status} ({reason or 'no reason given'}): {advice}"


def codes_for_close(close_code: int | None, reason: str | None) -> tuple[Code, ...]:
    """The rejection codes a server may have meant by ``close_code`` and
    ``reason`` (SPEC.md §9 maps several codes to one close code on purpose)."""
    return tuple(
        code
        for code in Code
        if code.close_code == close_code and (reason is None or code.peer_reason == reason)
    )


class Refused(SignedWSError):
    """The server refused this client in a way that retrying cannot fix.

    Its message says what the close code or HTTP status means and what to do
    (`explain_close`, `explain_status`), with what the client can tell on its
    own (e.g. a credential for another audience).

    Attributes:
        close_code: the WebSocket close code (None for a refused handshake).
        reason: the server's opaque close reason, or for a refused handshake
            the reason text of the server's response.
        status: the HTTP status of a refused handshake (403: Origin not
            allowed), else None.
        codes: the rejection codes the close code and reason may stand for
            (SPEC.md §9 maps several to one on purpose).
        code: the rejection code, when only one fits (e.g. 4403:
            `credential_revoked`), else None.
        explanation: what it means and what to do, as in the message.
    """

    def __init__(
        self,
        close_code: int | None,
        reason: str = "",
        *,
        status: int | None = None,
        hint: str = "",
    ) -> None:
        self.close_code = close_code
        self.reason = reason
        self.status = status
        self.codes = codes_for_close(close_code, reason or None) if close_code else ()
        self.code: Code | None = self.codes[0] if len(self.codes) == 1 else None
        if status is not None:
            self.explanation = explain_status(status, reason)
        else:
            self.explanation = explain_close(close_code, reason)
        if hint:
            self.explanation += f" Here: {hint}."
        super().__init__(f"server refused the connection: {self.explanation}")


def _listed(outcomes: tuple[str, ...]) -> str:
    return "; what each got: " + "; ".join(outcomes) if outcomes else ""


class ConnectionLost(SignedWSError):
    """The connection ended and the client did not, or could not, reconnect.

    Attributes:
        close_code: the close code of the last connection (1006: no close
            frame), or None if the last attempt did not get that far.
        attempts: reconnection attempts made.
        reason: the last connection's close reason ("" if none).
        outcomes: what each connection and reconnection attempt since the
            last progress got, oldest first (e.g. ``"attempt 2: HTTP 503
            (server busy)"``); the message lists them.
    """

    def __init__(
        self,
        close_code: int | None,
        attempts: int = 0,
        reason: str = "",
        outcomes: tuple[str, ...] = (),
    ) -> None:
        self.close_code = close_code
        self.attempts = attempts
        self.reason = reason
        self.outcomes = outcomes
        super().__init__(
            f"connection lost ({explain_close(close_code, reason)}) after {attempts} "
            f"reconnection attempts{_listed(outcomes)}"
        )


class RepeatedFailure(ConnectionLost):
    """Connections kept ending the same way, with no progress in between
    (SPEC.md §7.3): ``max_repeats`` connections in a row were closed with the
    same close code and reason before anything was acknowledged or received
    on them. Retrying again would fail again; the client gave up instead of
    waiting forever. Unacknowledged messages stay in the client's
    ``unacknowledged``.

    Attributes:
        close_code, reason: how each of those connections ended.
        attempts: how many connections in a row ended that way.
        codes, code: the rejection codes the close code and reason may stand
            for, as on `Refused`.
    """

    def __init__(
        self, close_code: int | None, reason: str, attempts: int, outcomes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(close_code, attempts, reason, outcomes)
        self.codes = codes_for_close(close_code, reason or None) if close_code else ()
        self.code: Code | None = self.codes[0] if len(self.codes) == 1 else None
        self.args = (
            f"{attempts} connections in a row closed before any progress, giving up: "
            f"{explain_close(close_code, reason)}{_listed(outcomes)}",
        )


class ClientClosed(SignedWSError):
    """The client was closed, by the application or normally by the server."""

    def __init__(self) -> None:
        super().__init__("the client is closed")
