"""Keys of an encrypted repository: scrypt from a password, AES-256-GCM for every object.

A repository's objects are named by a keyed hash (HMAC-SHA256) of their content when it is
encrypted, so names reveal nothing about content someone could guess; unencrypted repositories
name objects by plain sha256.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warehouse.backup.errors import KeyProblem

NONCE_BYTES = 12
# scrypt cost: ~0.1 s and 32 MiB once per command, like restic's defaults in spirit.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
KEY_CHECK = b"seneca backup repository key check"


@dataclass(frozen=True)
class Keys:
    """The encryption key and the key that names objects."""

    encryption: bytes
    naming: bytes

    def seal(self, data: bytes, associated: bytes) -> bytes:
        """`data` encrypted and authenticated, bound to `associated` (its name)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.encryption).encrypt(nonce, data, associated)

    def open(self, blob: bytes, associated: bytes) -> bytes | None:
        """The plaintext of a sealed blob, or None when it was altered or sealed otherwise."""
        view = memoryview(blob)  # slices of a view copy nothing
        try:
            return AESGCM(self.encryption).decrypt(
                view[:NONCE_BYTES], view[NONCE_BYTES:], associated
            )
        except (InvalidTag, ValueError):
            return None

    def name(self, data: bytes | memoryview) -> str:
        """The object name of `data`: HMAC-SHA256 under the naming key."""
        return hmac.new(self.naming, data, hashlib.sha256).hexdigest()


def derive_keys(secret: bytes, salt: bytes) -> Keys:
    """Both keys from a password or key file's content and the repository's salt."""
    material = hashlib.scrypt(
        secret, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=128 << 20, dklen=64
    )
    return Keys(material[:32], material[32:])


def new_salt() -> bytes:
    """A fresh random salt for a new repository."""
    return os.urandom(32)


def key_check(keys: Keys) -> bytes:
    """What a new repository stores so a wrong key is known before anything is read."""
    return keys.seal(KEY_CHECK, b"key-check")


def check_key(keys: Keys, check: bytes, where: str) -> None:
    """Refuse a key that does not open the repository's key check."""
    if keys.open(check, b"key-check") != KEY_CHECK:
        raise KeyProblem(
            f"backup repository {where}: wrong key (SENECA_BACKUP_PASSWORD or the key file "
            "does not open it)"
        )
