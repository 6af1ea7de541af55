"""A handler for `signedws serve` (``handler = "chat_handler:handler"``): a chat
room on a topic. Every verified user with the ``chat`` scope joins the room
with their first message; what they say goes to every member, on every node
of the fleet when ``[redis].url`` is set (in this process otherwise), each
member getting it once, in order (SPEC.md §14).

A client that reconnects sends ``/resume <n>``, ``n`` its mark for the room
(``client.topics.mark("room:general")``): it gets the messages after ``n``
that the fleet kept (``[redis].topic_history``), then the live ones."""

from signedws.asyncio import ServerConnection
from signedws.asyncio.topics import topics

ROOM = "room:general"


async def handler(connection: ServerConnection) -> None:
    room = topics()
    try:
        async for message in connection:
            if "chat" not in message.scopes:
                continue  # authenticated, but not allowed to talk
            text = message.payload
            if isinstance(text, str) and text.startswith("/resume ") and text[8:].isdigit():
                await room.resume(connection, ROOM, after=int(text[8:]))
                continue
            room.subscribe(connection, ROOM)  # a server-side decision: the scope
            await room.publish(ROOM, f"{message.subject}: {text}")
    finally:
        room.unsubscribe_all(connection)
