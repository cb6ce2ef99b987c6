"""Encryption at rest: one key, authenticated encryption (AES-256-GCM), keyed pseudonyms.

The key is 32 random bytes written as urlsafe base64 (the Fernet key format:
:func:`new_key`), taken from ``MIGRAINE_BAYES_KEY`` or from a key file (``--key-file``,
:func:`use_key_file`). With a key, every twin file, audit row, posted diary and export the
tool writes is *sealed*::

    MAGIC (7 bytes) | key id (8) | nonce (12) | AES-GCM ciphertext and tag

The associated data are the magic, the key id and a *context* (the file's role, e.g.
``twin.json``), so a sealed file moved into another role, or altered by one bit, fails to open.
The key id (8 bytes of a hash of the key) lets a wrong key be named instead of failing
obscurely. Without a key nothing is sealed and the tool works as before (the CLI says that
data are not encrypted). Sub-keys for other purposes (keyed pseudonyms, audit lookups) are
derived with HKDF, never the key itself.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from migraine_bayes.errors import MigraineBayesError

KEY_ENV = "MIGRAINE_BAYES_KEY"
MAGIC = b"MBSEAL1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
_HEADER = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES

_override: bytes | None = None  # a key given by --key-file, for this process


class EncryptionKeyError(MigraineBayesError):
    """A key is missing, malformed or not the one the data were sealed with."""


def new_key() -> str:
    """A fresh random key in the Fernet format (urlsafe base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_key(text: str, where: str) -> bytes:
    """The 32 key bytes of ``text`` (urlsafe base64); ``where`` names its source in errors."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise EncryptionKeyError(f"{where}: not a urlsafe-base64 key (make one with "
                                 "`migraine-twin keygen FILE`)") from None
    if len(raw) != 32:
        raise EncryptionKeyError(f"{where}: the key is {len(raw)} bytes; it must be 32 "
                                 "(make one with `migraine-twin keygen FILE`)")
    return raw


def read_key_file(path: str | os.PathLike) -> bytes:
    """The key stored in a key file (one line of urlsafe base64)."""
    path = Path(path)
    if not path.is_file():
        raise EncryptionKeyError(f"key file {path} not found")
    return parse_key(path.read_text(encoding="ascii", errors="replace"), f"key file {path}")


def use_key_file(path: str | os.PathLike | None) -> None:
    """Make the key in ``path`` this process's key (None: back to ``MIGRAINE_BAYES_KEY``)."""
    global _override
    _override = None if path is None else read_key_file(path)


@contextlib.contextmanager
def using(key: bytes | None) -> Iterator[None]:
    """Within the block, ``key`` is the process's key (None: ``MIGRAINE_BAYES_KEY``'s)."""
    global _override
    previous, _override = _override, key
    try:
        yield
    finally:
        _override = previous


def active_key() -> bytes | None:
    """The key in use: a key file given to this process, else ``MIGRAINE_BAYES_KEY``, else None."""
    if _override is not None:
        return _override
    text = os.environ.get(KEY_ENV)
    return parse_key(text, KEY_ENV) if text else None


def key_id(key: bytes) -> bytes:
    """8 bytes naming a key without revealing it."""
    return hashlib.sha256(b"migraine_bayes key id\0" + key).digest()[:KEY_ID_BYTES]


def subkey(purpose: str, key: bytes | None = None) -> bytes:
    """A 32-byte key for one ``purpose``, derived from the key (HKDF-SHA256)."""
    key = key if key is not None else _need_key(purpose)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"migraine_bayes " + purpose.encode("utf-8")).derive(key)


def keyed_hash(value: str, purpose: str, key: bytes | None = None, length: int = 16) -> str:
    """A keyed pseudonym of ``value``: HMAC-SHA256 under the ``purpose`` sub-key, hex."""
    mac = hmac.new(subkey(purpose, key), value.encode("utf-8"), hashlib.sha256)
    return mac.hexdigest()[:length]


def _need_key(what: str) -> bytes:
    key = active_key()
    if key is None:
        raise EncryptionKeyError(f"{what} needs a key: set {KEY_ENV} or pass --key-file")
    return key


# ---------------------------------------------------------------- sealing
def is_sealed(data: bytes) -> bool:
    """True when ``data`` begin with the sealed format's magic."""
    return data[: len(MAGIC)] == MAGIC


def sealed_key_id(data: bytes) -> bytes:
    """The key id a sealed blob names (``data`` must be sealed)."""
    return data[len(MAGIC): len(MAGIC) + KEY_ID_BYTES]


def seal(data: bytes, context: str, key: bytes | None = None) -> bytes:
    """Encrypt and authenticate ``data`` for the role ``context`` (see the module doc)."""
    key = key if key is not None else _need_key(f"sealing {context}")
    kid, nonce = key_id(key), secrets.token_bytes(NONCE_BYTES)
    aad = MAGIC + kid + context.encode("utf-8")
    return MAGIC + kid + nonce + AESGCM(key).encrypt(nonce, data, aad)


def unseal(data: bytes, context: str, where: str, key: bytes | None = None) -> bytes:
    """The plaintext of sealed ``data``; :class:`EncryptionKeyError` naming ``where`` if not.

    A wrong key, a missing key, a file sealed for another role or altered all say so.
    """
    if not is_sealed(data) or len(data) < _HEADER + 16:
        raise EncryptionKeyError(f"{where}: not a sealed file")
    kid = sealed_key_id(data)
    key = key if key is not None else active_key()
    if key is None:
        raise EncryptionKeyError(f"{where} is encrypted: set {KEY_ENV} or pass --key-file "
                                 f"(sealed with key id {kid.hex()})")
    if key_id(key) != kid:
        raise EncryptionKeyError(f"{where} was encrypted with another key (key id {kid.hex()}; "
                                 f"this key's id is {key_id(key).hex()})")
    nonce = data[len(MAGIC) + KEY_ID_BYTES: _HEADER]
    try:
        return AESGCM(key).decrypt(nonce, data[_HEADER:], MAGIC + kid + context.encode("utf-8"))
    except InvalidTag:
        raise EncryptionKeyError(f"{where}: fails authentication — altered, truncated or "
                                 f"moved from another role than {context!r}") from None


def encode(data: bytes, context: str) -> bytes:
    """``data`` as stored: sealed when a key is in use, else unchanged."""
    return seal(data, context) if active_key() is not None else data


def decode(data: bytes, context: str, where: str) -> bytes:
    """Stored bytes back as plaintext (sealed or not)."""
    return unseal(data, context, where) if is_sealed(data) else data


def read_bytes(path: str | os.PathLike, context: str | None = None) -> bytes:
    """A file's plaintext; ``context`` defaults to the file's name."""
    path = Path(path)
    return decode(path.read_bytes(), context or path.name, str(path))


def read_text(path: str | os.PathLike, context: str | None = None) -> str:
    """A text file's plaintext (UTF-8)."""
    return read_bytes(path, context).decode("utf-8")


def is_sealed_file(path: str | os.PathLike) -> bool:
    """True when the file at ``path`` is sealed."""
    with open(path, "rb") as fh:
        return is_sealed(fh.read(len(MAGIC)))
