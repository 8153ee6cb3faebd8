"""Sealing bring-your-own vendor keys: AES-256-GCM under a data key derived from a master key.

A sealed key reads `cwv1.<master-id>.<base64url(salt ‖ nonce ‖ ciphertext+tag)>`:
- `cwv1` is the format version; `<master-id>` names the master key that sealed it (the first 12
  hex characters of the SHA-256 of that key), so rotation knows which key opens each row;
- the 256-bit data key is HKDF-SHA256 of the master key with a fresh 128-bit salt per sealing;
- the 96-bit nonce is fresh for every sealing (random, so no counter state to lose);
- the associated data binds the ciphertext to its organization, owner, provider and key id, so a
  ciphertext copied onto another row fails to open.
The plaintext never leaves this module except as the return value of `open_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import CreatorError, InvalidInput

FORMAT = "cwv1"
_INFO = b"creator-workspace vault data key v1"
SALT_BYTES, NONCE_BYTES, KEY_BYTES = 16, 12, 32


class VaultError(CreatorError):
    """A sealed key could not be opened: wrong master key, tampering, or moved to another row."""

    code = "vault_error"


@dataclass(frozen=True)
class KeyBinding:
    """What a sealed key belongs to; it is the AES-GCM associated data."""

    org_id: str
    owner_id: str
    provider: str
    key_id: str

    def associated_data(self) -> bytes:
        return "\x1f".join((FORMAT, self.org_id, self.owner_id, self.provider, self.key_id)).encode()


class MasterKeys:
    """The current master key (seals) and older ones (still open rows sealed before a rotation)."""

    def __init__(self, current: bytes, older: list[bytes] | None = None) -> None:
        for key in [current, *(older or [])]:
            if len(key) != KEY_BYTES:
                raise InvalidInput("A master key must be 32 bytes (base64url-encoded: 43 characters).")
        self.current = current
        self._by_id = {master_id(k): k for k in [current, *(older or [])]}

    @property
    def current_id(self) -> str:
        return master_id(self.current)

    def by_id(self, key_id: str) -> bytes:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise VaultError(
                f"This key was sealed with master key {key_id}, which is not configured; "
                "set it in CREATOR_MASTER_KEY (comma-separated, newest first)."
            ) from None

    @classmethod
    def parse(cls, text: str) -> MasterKeys:
        """Keys from `CREATOR_MASTER_KEY`: base64url keys separated by commas, newest first."""
        keys = [decode_master_key(part) for part in text.split(",") if part.strip()]
        if not keys:
            raise InvalidInput("CREATOR_MASTER_KEY is empty.")
        return cls(keys[0], keys[1:])


def master_id(key: bytes) -> str:
    """A short public name for a master key (never reveals the key)."""
    return hashlib.sha256(b"creator-master-id" + key).hexdigest()[:12]


def new_master_key() -> str:
    """A fresh random master key, base64url-encoded."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


def decode_master_key(text: str) -> bytes:
    text = text.strip()
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("A master key must be base64url text (see `creator keys rotate-master`).") from exc


def load_or_create_master_keys(env_value: str | None, home: Path) -> tuple[MasterKeys, bool]:
    """The master keys from the environment, or from `home/master.key` (created 0600 on first run).

    Returns the keys and whether they came from the data directory (a production setup should set
    CREATOR_MASTER_KEY instead, so the key does not sit beside the database it protects).
    """
    if env_value:
        return MasterKeys.parse(env_value), False
    path = home / "master.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_master_key() + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o600)
    return MasterKeys.parse(path.read_text()), True


def _data_key(master: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_INFO).derive(master)


def seal_key(masters: MasterKeys, plaintext: str, binding: KeyBinding) -> str:
    """Encrypt a vendor key for storage in the row described by `binding`."""
    if not plaintext:
        raise InvalidInput("The key is empty.")
    salt = secrets.token_bytes(SALT_BYTES)
    nonce = secrets.token_bytes(NONCE_BYTES)
    aead = AESGCM(_data_key(masters.current, salt))
    sealed = aead.encrypt(nonce, plaintext.encode(), binding.associated_data())
    body = base64.urlsafe_b64encode(salt + nonce + sealed).decode().rstrip("=")
    return f"{FORMAT}.{masters.current_id}.{body}"


def open_key(masters: MasterKeys, sealed: str, binding: KeyBinding) -> str:
    """Decrypt a sealed key; VaultError if it was tampered with, moved, or the master key is missing."""
    try:
        fmt, key_id, body = sealed.split(".", 2)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, binascii.Error) as exc:
        raise VaultError("A stored key is damaged and cannot be read; add it again.") from exc
    if fmt != FORMAT or len(raw) < SALT_BYTES + NONCE_BYTES + 16:
        raise VaultError("A stored key is damaged and cannot be read; add it again.")
    salt, nonce, ciphertext = (
        raw[:SALT_BYTES],
        raw[SALT_BYTES : SALT_BYTES + NONCE_BYTES],
        raw[SALT_BYTES + NONCE_BYTES :],
    )
    aead = AESGCM(_data_key(masters.by_id(key_id), salt))
    try:
        return aead.decrypt(nonce, ciphertext, binding.associated_data()).decode()
    except InvalidTag:
        raise VaultError("A stored key does not belong here or was tampered with; add it again.") from None


def sealed_with(sealed: str) -> str:
    """The id of the master key that sealed `sealed`."""
    return sealed.split(".", 2)[1] if sealed.count(".") >= 2 else ""


def reseal_key(masters: MasterKeys, sealed: str, binding: KeyBinding) -> str:
    """The same key sealed under the current master key (for `creator keys rotate-master`)."""
    return seal_key(masters, open_key(masters, sealed, binding), binding)


def mask_key(plaintext: str) -> str:
    """How a key may be shown after saving: its last four characters only."""
    return "…" + plaintext[-4:] if len(plaintext) >= 12 else "…"
