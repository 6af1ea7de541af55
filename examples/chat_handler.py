"""A handler for `signedws serve` (``handler = "chat_handler:handler"``): a chat
room on a topic. Every verified user with the ``chat`` scope joins the room
with their first message; what they say goes to every member, on every node
of the fleet when ``[redis].url`` is set (in this process otherwise), each
member getting it once, in order (SPEC.md §14)."""

from signedws.asyncio import ServerConnection
from signedws.asyncio.topics import topics

ROOM = "room:general"


async def handler(connection: ServerConnection) -> None:
    room = topics()
    try:
        async for message in connection:
            if "chat" not in message.scopes:
                continue  # authenticated, but not allowed to talk
            room.subscribe(connection, ROOM)  # a server-side decision: the scope
            await room.publish(ROOM, f"{message.subject}: {message.payload}")
    finally:
        room.unsubscribe_all(connection)
