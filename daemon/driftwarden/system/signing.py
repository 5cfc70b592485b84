"""Ed25519 keys for the audit digests: generated once (`driftwarden audit keygen`), the
private key read from a file or the systemd credential `audit-signing-key`, the public
key given to auditors. Both are PEM (PKCS#8 / SubjectPublicKeyInfo), so `openssl pkey`
reads them too. A key is named by its fingerprint: SHA-256 of its raw 32 public bytes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from driftwarden.domain.errors import DriftwardenError
from driftwarden.system.files import UnusableFileError, read_capped

SIGNING_KEY_NAME = "audit-signing-key"  # the file in the state directory, and the credential
PUBLIC_SUFFIX = ".pub"


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """A private key, with where it came from (for messages) and its fingerprint."""

    private: Ed25519PrivateKey
    source: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.private.public_key())

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode("ascii")


@dataclass(frozen=True)
class PublicKey:
    key: Ed25519PublicKey
    source: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    def verifies(self, message: bytes, signature: str) -> bool:
        try:
            self.key.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def load_signing_key(path: Path) -> SigningKey:
    """The private key in `path` (PEM, PKCS#8, no passphrase: its file mode protects it)."""
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise DriftwardenError(
            f"the signing key {path} is not a PEM private key without a passphrase ({exc})",
            hint="generate one with `driftwarden audit keygen`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DriftwardenError(
            f"the signing key {path} is not an Ed25519 key",
            hint="generate one with `driftwarden audit keygen`",
        )
    return SigningKey(key, str(path))


def load_public_key(path: Path) -> PublicKey:
    """A public key (PEM), or the public half of a private key file."""
    data = _read(path, "public key")
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise DriftwardenError(
                f"{path} is not a PEM public key",
                hint="give the .pub file `driftwarden audit keygen` wrote",
            ) from None
        public = private.public_key()
    if not isinstance(public, Ed25519PublicKey):
        raise DriftwardenError(f"{path} is not an Ed25519 public key")
    return PublicKey(public, str(path))


def generate_key_pair(path: Path, *, force: bool = False) -> SigningKey:
    """Write a new private key to `path` (0600, never over an existing one unless `force`)
    and its public key to `path.pub`."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        try:
            if force:
                partial.replace(path)
            else:
                os.link(partial, path)  # fails if a key is there: never lose one
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        public_path = path.with_name(path.name + PUBLIC_SUFFIX)
        public_path.write_bytes(public_pem)
        public_path.chmod(0o644)
    except FileExistsError:
        raise DriftwardenError(
            f"a signing key already exists at {path}",
            hint="to rotate, write the new key elsewhere (--out) and keep the old one as "
            "[audit] previous_signing_key_file; --force replaces it",
        ) from None
    except OSError as exc:
        raise DriftwardenError(
            f"cannot write the signing key {path}: {exc.strerror or exc}"
        ) from None
    return SigningKey(private, str(path))


def _read(path: Path, what: str) -> bytes:
    try:
        return read_capped(path)
    except UnusableFileError as exc:
        raise DriftwardenError(f"the {what} {path} {exc}") from None
