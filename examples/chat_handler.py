"""A handler for `signedws serve` (``handler = "chat_handler:handler"``): a tiny
chat room that broadcasts what each verified user says to everyone connected."""

from signedws.asyncio import ServerConnection

room: set[ServerConnection] = set()


async def handler(connection: ServerConnection) -> None:
    room.add(connection)
    try:
        async for message in connection:
            if "chat" not in message.scopes:
                continue  # authenticated, but not allowed to talk
            for member in list(room):
                await member.send(f"{message.subject}: {message.payload}")
    finally:
        room.discard(connection)
