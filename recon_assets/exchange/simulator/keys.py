"""CDP API key files and the JWT check the real exchange applies to every private request.

A key file is the JSON Coinbase's developer platform hands out: ``{"name", "privateKey"}``,
the name ``organizations/<uuid>/apiKeys/<uuid>`` and the secret either a PEM EC key (ES256)
or the base64 of an Ed25519 seed followed by its public key (EdDSA). The simulator keeps only
the public half in memory, so nothing it logs or raises can leak the secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from recon_assets.errors import ConfigError

#: Seconds of clock skew tolerated on ``nbf``/``exp``, as a real server would.
JWT_LEEWAY_SECONDS = 5

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class AuthError(Exception):
    """A request's bearer token is missing, malformed, expired, or signed by an unknown key."""


@dataclass(frozen=True)
class ApiKey:
    """The public side of a CDP key: enough to verify tokens, useless to forge them."""

    name: str
    public_key: PublicKey
    algorithm: str  # "ES256" or "EdDSA", as coinbase/jwt_generator.py signs with that key


def _key_name() -> str:
    return f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"


def _write_private(path: Path, payload: dict[str, str]) -> None:
    """Create the file with mode 0600 from the start; never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")


def create_ec_key_file(path: Path) -> ApiKey:
    """Write a new CDP-style key file holding a P-256 key in SEC1 PEM (what CDP issues)."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode("ascii")
    name = _key_name()
    _write_private(path, {"name": name, "privateKey": pem})
    return ApiKey(name, private.public_key(), "ES256")


def create_ed25519_key_file(path: Path) -> ApiKey:
    """Write a new key file with an Ed25519 secret as base64(seed + public key), 64 bytes."""
    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    name = _key_name()
    _write_private(path, {"name": name, "privateKey": base64.b64encode(seed + public).decode()})
    return ApiKey(name, private.public_key(), "EdDSA")


def load_api_key(path: Path) -> ApiKey:
    """Read a key file and keep only its name and public key.

    Accepts what the SDK accepts: a PEM EC key (literal ``\\n`` escapes allowed, as in keys
    pasted into one-line JSON) or base64 Ed25519 of 32 or 64 bytes.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        name = data.get("name") or data.get("id")
        secret = data["privateKey"].replace("\\n", "\n")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"unreadable key file {path}: {type(exc).__name__}") from None
    if not isinstance(name, str) or not name:
        raise ConfigError(f"key file {path} has no key name")
    try:
        if secret.lstrip().startswith("-----BEGIN"):
            private = serialization.load_pem_private_key(secret.encode(), password=None)
        else:
            raw = base64.b64decode("".join(secret.split()), validate=True)
            if len(raw) not in (32, 64):
                raise ValueError("Ed25519 secret must be 32 or 64 bytes")
            private = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
    except (ValueError, TypeError, binascii.Error):
        # The message of a parsing error may quote key material: say only what failed.
        raise ConfigError(f"key file {path} holds no usable EC or Ed25519 private key") from None
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return ApiKey(name, private.public_key(), "ES256")
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return ApiKey(name, private.public_key(), "EdDSA")
    raise ConfigError(f"key file {path}: unsupported key type {type(private).__name__}")


def ensure_key_file(path: Path) -> ApiKey:
    """Load the key file, creating an EC key there first when it does not exist yet."""
    if not path.exists():
        return create_ec_key_file(path)
    return load_api_key(path)


def verify_request_token(authorization: str | None, key: ApiKey, method: str, host: str,
                         path: str) -> None:
    """Check a bearer token the way Advanced Trade does, or raise :class:`AuthError`.

    The token must be signed by ``key`` with its algorithm, name the key in ``kid`` and
    ``sub``, come from ``iss`` "cdp", be inside its ``nbf``/``exp`` window, and bind this very
    request: ``uri`` = "METHOD host:port/path" with the Host header the client sent, so a token
    captured for one path cannot be replayed on another.
    """
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError("missing bearer token")
    token = authorization[len("Bearer "):].strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("malformed token") from None
    if header.get("kid") != key.name:
        raise AuthError("unknown API key")
    try:
        claims = jwt.decode(token, key.public_key, algorithms=[key.algorithm], issuer="cdp",
                            leeway=JWT_LEEWAY_SECONDS,
                            options={"require": ["sub", "iss", "nbf", "exp", "uri"]})
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {type(exc).__name__}") from None
    if claims["sub"] != key.name:
        raise AuthError("token subject is not the key name")
    if claims["uri"] != f"{method} {host}{path}":
        raise AuthError("token uri does not match the request")
