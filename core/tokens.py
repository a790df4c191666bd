"""Upload tokens as text: made, recognised and hashed; what is stored and checked is in services.tokens.

A token reads `mgt_` + 43 base62 characters (32 random bytes) + a 6-character CRC32 of them,
as GitHub's tokens do: the prefix lets secret scanners find a leaked token, and the checksum
lets them (and the web process, before any database read) tell a real one from a look-alike.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

PREFIX = "mgt_"
_RANDOM_BYTES = 32
_RANDOM_LENGTH = 43  # 62**43 > 2**256
_CHECKSUM_LENGTH = 6  # 62**6 > 2**32
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SHAPE = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{_RANDOM_LENGTH + _CHECKSUM_LENGTH}}}$")
# Shown in lists to tell tokens apart: the prefix and four random characters (24 bits of 256).
SHOWN_LENGTH = len(PREFIX) + 4


def new_token() -> str:
    body = _base62(int.from_bytes(secrets.token_bytes(_RANDOM_BYTES), "big"), _RANDOM_LENGTH)
    return PREFIX + body + _checksum(body)


def well_formed(token: str) -> bool:
    """Whether `token` has the shape and checksum of one we made (not whether it is valid)."""
    if not SHAPE.match(token):
        return False
    body, checksum = token[len(PREFIX) : -_CHECKSUM_LENGTH], token[-_CHECKSUM_LENGTH:]
    return secrets.compare_digest(_checksum(body), checksum)


def token_hash(token: str) -> str:
    """What is stored: a token carries 256 random bits, so a plain SHA-256 cannot be reversed."""
    return hashlib.sha256(token.encode()).hexdigest()


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LENGTH)


def _base62(number: int, length: int) -> str:
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits)).rjust(length, "0")
