"""The client's receive hook for server frames and broadcasts (SPEC.md §7.2, §14.4).

A client's receive loop hands every message from the server to
`verify_server_frame`: a broadcast frame (kind 6 or 7) is verified against the
connection's server counter and the client's topic marks
(`signedws.signer.Signer.topics`: pass the same `signedws.broadcast.Topics` to
every connection's signer, as the stream, so a topic's order and gaps hold
across reconnects); any other frame as a §7 server frame. A broadcast comes
back in the shape of a server frame carrying the last acknowledgement again,
so a loop written for server frames delivers its payload unchanged; the full
`signedws.broadcast.BroadcastMessage` (topic, ``tseq``, ``missed``) goes to
``on_broadcast``. I/O-free.
"""

from __future__ import annotations

from collections.abc import Callable

from .broadcast import BroadcastMessage
from .errors import Code, Rejected
from .signer import ServerMessage, Signer

__all__ = ["verify_server_frame"]


def verify_server_frame(
    signer: Signer,
    data: str | bytes,
    *,
    on_broadcast: Callable[[BroadcastMessage], None] | None = None,
) -> ServerMessage:
    """Verify one message from the server.

    Args:
        signer: the connection's signer.
        data: the message as received (a text message is refused).
        on_broadcast: called with each verified broadcast (before returning).

    Returns:
        The server frame; for a broadcast, one with its counter, payload and
        time and the connection's current ``ack`` (a broadcast carries none).

    Raises:
        Rejected: the first failing check's code; nothing changed. Close the
            connection with ``exc.code.close_code``.
    """
    if isinstance(data, str):
        raise Rejected(Code.MALFORMED, "text message from the server")
    message = signer.verify_any(data)
    if isinstance(message, ServerMessage):
        return message
    if on_broadcast is not None:
        on_broadcast(message)
    return ServerMessage(message.counter, signer.acked, message.payload, message.timestamp_ms)
