"""A signedws echo server. Run examples/setup.sh first (it makes the key files)."""

import asyncio

from signedws import Verifier
from signedws.asyncio import serve
from signedws.config import load_fleet_key, load_keyring

keyring, fleet_key = load_keyring("keyring.json"), load_fleet_key("fleet.jwk")
verifier = Verifier(keyring, audience="wss://chat.example", fleet_key=fleet_key)


async def handler(connection):
    async for message in connection:  # verified: subject, scopes, counter, payload
        await connection.send(f"{message.subject} said {message.payload}")


async def main():
    origins, port = ["https://chat.example"], 8765
    async with serve(handler, "127.0.0.1", port, verifier=verifier, origins=origins,
                     allow_no_origin=True) as server:  # fmt: skip
        await server.serve_forever()


asyncio.run(main())
