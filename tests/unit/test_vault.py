"""The vault: AES-256-GCM sealing that fails loudly on tampering, moved rows and missing master keys."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from core.vault import (
    KeyBinding,
    MasterKeys,
    VaultError,
    decode_master_key,
    load_or_create_master_keys,
    mask_key,
    new_master_key,
    open_key,
    reseal_key,
    seal_key,
    sealed_with,
)

SECRET = "sk-proj-THIS-IS-A-VENDOR-KEY-0123456789"
ROW = KeyBinding(org_id="org-1", owner_id="user-1", provider="openai", key_id="key-1")


@pytest.fixture
def masters() -> MasterKeys:
    return MasterKeys(decode_master_key(new_master_key()))


def _tamper(sealed: str, index: int) -> str:
    fmt, key_id, body = sealed.split(".", 2)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index] ^= 0x01
    return f"{fmt}.{key_id}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"


def test_a_sealed_key_opens_to_the_same_key_and_does_not_contain_it(masters: MasterKeys) -> None:
    sealed = seal_key(masters, SECRET, ROW)
    assert SECRET not in sealed
    assert SECRET[-12:] not in sealed
    assert sealed.startswith(f"cwv1.{masters.current_id}.")
    assert open_key(masters, sealed, ROW) == SECRET


@pytest.mark.parametrize("where", [0, 16, 20, -1], ids=["salt", "nonce", "ciphertext", "tag"])
def test_tampering_with_any_part_fails(masters: MasterKeys, where: int) -> None:
    sealed = seal_key(masters, SECRET, ROW)
    with pytest.raises(VaultError):
        open_key(masters, _tamper(sealed, where), ROW)


@pytest.mark.parametrize(
    "other",
    [
        KeyBinding("org-2", "user-1", "openai", "key-1"),
        KeyBinding("org-1", "user-2", "openai", "key-1"),
        KeyBinding("org-1", "user-1", "anthropic", "key-1"),
        KeyBinding("org-1", "user-1", "openai", "key-2"),
    ],
    ids=["other org", "other owner", "other provider", "other row"],
)
def test_a_ciphertext_copied_onto_another_row_fails(masters: MasterKeys, other: KeyBinding) -> None:
    sealed = seal_key(masters, SECRET, ROW)
    with pytest.raises(VaultError):
        open_key(masters, sealed, other)


def test_ten_thousand_sealings_never_repeat_a_nonce(masters: MasterKeys) -> None:
    nonces = set()
    for _ in range(10_000):
        body = seal_key(masters, SECRET, ROW).split(".", 2)[2]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        nonces.add(raw[16:28])
    assert len(nonces) == 10_000


def test_rotation_reseals_under_the_new_key_and_the_old_key_is_then_unneeded(masters: MasterKeys) -> None:
    sealed = seal_key(masters, SECRET, ROW)
    new = decode_master_key(new_master_key())
    both = MasterKeys(new, [masters.current])
    resealed = reseal_key(both, sealed, ROW)
    assert sealed_with(resealed) == both.current_id != sealed_with(sealed)
    assert open_key(MasterKeys(new), resealed, ROW) == SECRET
    with pytest.raises(VaultError, match="not configured"):
        open_key(MasterKeys(new), sealed, ROW)


def test_damaged_text_is_a_clear_error(masters: MasterKeys) -> None:
    for bad in ("", "garbage", "cwv1.abc.!!!", "cwv2.x.AAAA"):
        with pytest.raises(VaultError):
            open_key(masters, bad, ROW)


def test_first_run_creates_a_private_master_key_file(tmp_path: Path) -> None:
    keys, from_file = load_or_create_master_keys(None, tmp_path)
    assert from_file
    mode = stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode)
    assert mode == 0o600
    again, _ = load_or_create_master_keys(None, tmp_path)
    assert again.current == keys.current


def test_the_environment_key_wins_and_lists_older_keys(tmp_path: Path) -> None:
    new, old = new_master_key(), new_master_key()
    keys, from_file = load_or_create_master_keys(f"{new},{old}", tmp_path)
    assert not from_file
    assert not (tmp_path / "master.key").exists()
    assert keys.current == decode_master_key(new)


def test_keys_are_shown_by_their_last_four_characters_only() -> None:
    assert mask_key(SECRET) == "…6789"
    assert mask_key("short") == "…"
