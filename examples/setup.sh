#!/bin/sh
# Make the files the examples and serve.toml use, in the current directory.
set -e
signedws keygen hmac --kid login-1 -o issuer.jwk --keyring keyring.json --issuer login
signedws keygen hmac --kid fleet -o fleet.jwk
signedws keygen ed25519 --kid server -o server.jwk --public-out server.pub.jwk
signedws issue mac --key issuer.jwk --issuer login --subject alice --scope chat \
    --audience wss://chat.example --lifetime 3600 --out alice.json
# The revocation file serve.toml watches: empty to begin with.
[ -e revoked.json ] || echo '{"credentials": [], "subjects": []}' > revoked.json
