#!/bin/sh
# Make the key files the examples use, in the current directory.
set -e
signedws keygen hmac --kid login-1 -o issuer.jwk --keyring keyring.json --issuer login
signedws keygen hmac --kid fleet -o fleet.jwk
signedws issue mac --key issuer.jwk --issuer login --subject alice --scope chat \
    --audience wss://chat.example --lifetime 3600 --out alice.json
