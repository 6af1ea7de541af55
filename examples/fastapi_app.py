"""A signedws echo endpoint in FastAPI. Run examples/setup.sh first, then
``uvicorn fastapi_app:app --port 8765 --ws-max-size 65536 --ws-per-message-deflate false``
(the verifier's frame size limit, and no compression: SECURITY.md); examples/client.py
reaches it at ``ws://127.0.0.1:8765/ws``."""

from typing import Annotated

from fastapi import Depends, FastAPI

from signedws import Verifier
from signedws.asyncio.asgi import ServerConnection, SignedWebSockets
from signedws.config import load_fleet_key, load_keyring

keyring, fleet_key = load_keyring("keyring.json"), load_fleet_key("fleet.jwk")
verifier = Verifier(keyring, audience="wss://chat.example", fleet_key=fleet_key)
signed = SignedWebSockets(verifier, origins=["https://chat.example"], allow_no_origin=True)
app = FastAPI()


@app.websocket("/ws")
async def echo(connection: Annotated[ServerConnection, Depends(signed)]):
    async for message in connection:  # verified: subject, scopes, counter, payload
        await connection.send(f"{message.subject} said {message.payload}")
