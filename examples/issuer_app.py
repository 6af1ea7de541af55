"""Your app's login, the signedws issuer and the signed WebSocket, in one FastAPI
app. Run examples/setup.sh first; set LOGIN_ISSUER, LOGIN_AUDIENCE and
LOGIN_JWKS_URL to your OpenID Provider's; then
``uvicorn issuer_app:app --port 8765 --ws-max-size 65536``."""

import os
from typing import Annotated

from fastapi import Depends, FastAPI

from signedws import Verifier
from signedws.asyncio.asgi import ServerConnection, SignedWebSockets
from signedws.asyncio.issuer import BearerTokenAuthenticator, issuer_app
from signedws.config import load_fleet_key, load_keyring
from signedws.issuer import IssuancePolicy, IssuerService
from signedws.keys import load_key

AUDIENCE, ORIGINS = "wss://chat.example", ["https://chat.example"]
keyring, fleet_key = load_keyring("keyring.json"), load_fleet_key("fleet.jwk")
verifier = Verifier(keyring, audience=AUDIENCE, fleet_key=fleet_key)
signed = SignedWebSockets(verifier, origins=ORIGINS, allow_no_origin=True)
login = BearerTokenAuthenticator(  # the access tokens your users already log in with
    issuer=os.environ["LOGIN_ISSUER"],
    audience=os.environ["LOGIN_AUDIENCE"],
    jwks_url=os.environ["LOGIN_JWKS_URL"],
)
policy = IssuancePolicy((AUDIENCE,), grantable=frozenset({"chat:read", "chat:write"}))
service = IssuerService.build(policy, mac_key=("login", *load_key("issuer.jwk")))
app = FastAPI()
app.mount("/signedws", issuer_app(service, authenticate=login, origins=ORIGINS))


@app.websocket("/ws")
async def echo(connection: Annotated[ServerConnection, Depends(signed)]):
    async for message in connection:  # verified: subject, scopes, counter, payload
        await connection.send(f"{message.subject} said {message.payload}")
