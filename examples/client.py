"""A signedws client: every frame signed, server frames verified, resent on reconnect."""

import asyncio

from signedws.asyncio import connect
from signedws.config import load_credential


async def main():
    credential = load_credential("alice.json")  # written by `signedws issue mac --out`
    async with connect("ws://127.0.0.1:8765", credential, audience="wss://chat.example") as client:
        await client.send("hello")
        print(await client.recv())
        await client.drain()  # wait until the server acknowledged everything sent


asyncio.run(main())
