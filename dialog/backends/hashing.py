"""Salted hashes for PINs and ID / phone tails, and masking of names and addresses.

Stored form: ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``, a fresh salt per value.
Clear values are never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 60_000


def normalize(value: str) -> str:
    """Spaces out, upper case (the X of a Chinese ID number)."""
    return "".join(value.split()).upper()


def hash_secret(value: str, *, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", normalize(value).encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${salt.hex()}${digest.hex()}"


def check_secret(value: str, stored: str | None) -> bool:
    """True when ``value`` hashes to ``stored``; constant-time compare; False on a bad format."""
    if not stored or not value:
        return False
    try:
        algorithm, iterations, salt, digest = stored.split("$")
        if algorithm != ALGORITHM:
            return False
        got = hashlib.pbkdf2_hmac("sha256", normalize(value).encode(), bytes.fromhex(salt),
                                  int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def mask_name(name: str) -> str:
    """张伟 -> 张*, 欧阳娜娜 -> 欧***: the family name only."""
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def mask_address(address: str, keep: int = 6) -> str:
    """Keep the city and district, hide the rest: 北京市朝阳区****."""
    address = address.strip()
    return address[:keep] + "****" if len(address) > keep else address
