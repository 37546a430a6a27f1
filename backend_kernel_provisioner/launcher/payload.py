"""gateway_provisioners' launch payload (version 1): how the launcher tells the server where the kernel is.

The server's ``ResponseManager`` listens on the response address with an RSA key
pair; the launcher sends, in one TCP connection closed after writing, base64 of
JSON ``{"version": 1, "key": RSA(aes_key), "conn_info": AES(json)}``: the
connection info AES-128-ECB encrypted (PKCS#7 padding) with a fresh key, and that
key wrapped with the server's public key (PKCS#1 v1.5). Extra keys in the
connection info (``pid``, ``pgid``, ``comm_port``, our ``backend_port``) reach the
provisioner's ``connection_info``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from Cryptodome.Cipher import AES, PKCS1_v1_5
from Cryptodome.PublicKey import RSA
from Cryptodome.Random import get_random_bytes
from Cryptodome.Util.Padding import pad

PAYLOAD_VERSION = 1


def encrypt_payload(connection_info: dict[str, Any], public_key: str) -> bytes:
    """The bytes the server's ResponseManager decodes (``public_key``: PEM body without header lines)."""
    aes_key = get_random_bytes(16)
    body = AES.new(aes_key, AES.MODE_ECB).encrypt(pad(json.dumps(connection_info).encode(), 16))
    wrapped_key = PKCS1_v1_5.new(RSA.import_key(base64.b64decode(public_key))).encrypt(aes_key)
    payload = {
        "version": PAYLOAD_VERSION,
        "key": base64.b64encode(wrapped_key).decode(),
        "conn_info": base64.b64encode(body).decode(),
    }
    return base64.b64encode(json.dumps(payload).encode())


def parse_address(response_address: str) -> tuple[str, int]:
    """``host:port`` → (host, port); a clear error for anything else."""
    host, sep, port = response_address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--response-address must be HOST:PORT, got {response_address!r}")
    return host, int(port)


async def send_payload(response_address: str, connection_info: dict[str, Any], public_key: str,
                       timeout: float = 30.0) -> None:
    """Deliver the encrypted connection info to the server's response address."""
    host, port = parse_address(response_address)
    data = encrypt_payload(connection_info, public_key)
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(data)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    finally:
        writer.close()
        await writer.wait_closed()
