"""A backup repository at a URL (local directory or `s3://`): objects, snapshots, key, ledger.

Layout under the URL:
    config              JSON: format version, chunk size, the salt and key check when encrypted
    data/<ab>/<name>    a chunk: codec byte, then zstd or raw bytes; sealed if encrypted
    snapshots/<name>    one manifest per snapshot, stored like an object (named by its content)
    locks/<id>          holders of the repository lock (lock.py)
    ledger              when each object was last read back (verify.py)

An object's name is the sha256 of its content (a keyed hash when encrypted), so content already
stored is never stored again, and reading an object back proves it by hashing it again. Objects
are written before the manifest that names them, each atomically (a local rename, an S3 PUT):
a backup that dies leaves only unreferenced objects, never a listed snapshot with holes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from warehouse.backup.crypto import Keys, check_key, derive_keys, key_check, new_salt
from warehouse.backup.errors import BackupError, DamagedObject, KeyProblem
from warehouse.settings import Settings
from warehouse.store.objects import ObjectStore, open_store

FORMAT_VERSION = 1
RAW, ZSTD = 0, 1
ZSTD_LEVEL = 3
# Compressed output must save this share of the input, else the object is stored raw.
COMPRESS_GAIN = 0.95


@dataclass(frozen=True)
class Stored:
    """One object a backup put: its name, plaintext length and whether it was new."""

    name: str
    length: int
    stored_bytes: int  # bytes written (0 when the object was already there)


class Repository:
    """An opened repository: its store, keys (when encrypted) and chunk size."""

    def __init__(self, store: ObjectStore, keys: Keys | None, chunk_bytes: int) -> None:
        """A repository over `store`; use `open_repository` to get one."""
        self.store = store
        self.keys = keys
        self.chunk_bytes = chunk_bytes
        self.local = not store.is_remote

    @property
    def url(self) -> str:
        """The repository's URL, as errors name it."""
        return self.store.url

    # -- naming and encoding ------------------------------------------------------------------

    def name_of(self, data: bytes | memoryview) -> str:
        """The name an object with this content has in this repository."""
        if self.keys is not None:
            return self.keys.name(data)
        return hashlib.sha256(data).hexdigest()

    def encode(self, name: str, data: bytes | memoryview, compress: bool) -> bytes:
        """The stored form of an object: zstd when that helps, sealed when encrypted."""
        codec, payload = RAW, bytes(data)
        if compress and len(data) > 64:
            packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
            if len(packed) < COMPRESS_GAIN * len(data):
                codec, payload = ZSTD, packed
        frame = bytes([codec]) + payload
        if self.keys is not None:
            return self.keys.seal(frame, name.encode())
        return frame

    def decode(self, name: str, blob: bytes, what: str = "object", rehash: bool = True) -> bytes:
        """The content of a stored object, proven by its name; DamagedObject if it is not.

        Without `rehash`, an encrypted object is proven by its authentication tag alone (sealed
        under this key with its name bound in, it cannot have changed); an unencrypted one is
        always hashed again, its name being its only proof.
        """
        frame: bytes | None = blob
        if self.keys is not None:
            frame = self.keys.open(blob, name.encode())
            if frame is None:
                raise DamagedObject(name, f"{what} fails authentication (corrupt or tampered)")
        assert frame is not None
        if not frame or frame[0] not in (RAW, ZSTD):
            raise DamagedObject(name, f"{what} has an unknown encoding (corrupt)")
        payload = memoryview(frame)[1:]
        try:
            data = bytes(payload) if frame[0] == RAW else zstandard.decompress(payload)
        except zstandard.ZstdError:
            raise DamagedObject(name, f"{what} does not decompress (corrupt)") from None
        if (rehash or self.keys is None) and self.name_of(data) != name:
            raise DamagedObject(name, f"{what} content does not match its name (corrupt)")
        return data

    # -- objects --------------------------------------------------------------------------------

    def object_key(self, name: str) -> str:
        """The key of an object under the repository root."""
        return f"data/{name[:2]}/{name}"

    def put(self, data: bytes | memoryview, known: set[str], compress: bool) -> Stored:
        """Store `data` unless an object with its name is in `known`; add its name there."""
        name = self.name_of(data)
        if name in known:
            return Stored(name, len(data), 0)
        blob = self.encode(name, data, compress)
        self.write(self.object_key(name), blob)
        known.add(name)
        return Stored(name, len(data), len(blob))

    def get(self, name: str, rehash: bool = True) -> bytes:
        """The content of object `name`; DamagedObject if it is missing or corrupt."""
        try:
            blob = self.read(self.object_key(name))
        except FileNotFoundError:
            raise DamagedObject(name, "missing from the repository") from None
        return self.decode(name, blob, rehash=rehash)

    def object_names(self) -> set[str]:
        """Names of every object stored."""
        return {key.rsplit("/", 1)[-1] for key in self.list_keys("data") if "/.tmp-" not in key}

    def object_sizes(self) -> dict[str, int]:
        """Stored size of every object."""
        return {key.rsplit("/", 1)[-1]: size for key, size in self.list_sizes("data")}

    def delete_objects(self, names: list[str]) -> None:
        """Remove objects (prune)."""
        self.delete([self.object_key(n) for n in names])

    # -- documents: snapshots and the ledger ------------------------------------------------------

    def put_document(self, folder: str, document: dict[str, Any]) -> str:
        """Store a JSON document named by its content under `folder`; its name."""
        data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        name = self.name_of(data)
        self.write(f"{folder}/{name}", self.encode(name, data, compress=True), sync=True)
        return name

    def get_document(self, folder: str, name: str) -> dict[str, Any]:
        """A stored JSON document, proven by its name."""
        try:
            blob = self.read(f"{folder}/{name}")
        except FileNotFoundError:
            raise BackupError(f"backup repository {self.url}: no {folder}/{name}") from None
        try:
            data = self.decode(name, blob, what=f"{folder}/{name[:16]}")
        except DamagedObject as exc:
            raise BackupError(f"backup repository {self.url}: {exc.reason}") from None
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    def put_record(self, key: str, document: dict[str, Any]) -> None:
        """Store a JSON document that changes in place (the verify ledger) at `key`."""
        data = json.dumps(document, sort_keys=True).encode()
        frame = hashlib.sha256(data).digest() + zstandard.compress(data)
        if self.keys is not None:
            frame = self.keys.seal(frame, key.encode())
        self.write(key, frame, sync=True)

    def get_record(self, key: str) -> dict[str, Any] | None:
        """A document stored with `put_record`, None if there is none."""
        try:
            frame: bytes | None = self.read(key)
        except FileNotFoundError:
            return None
        if self.keys is not None and frame is not None:
            frame = self.keys.open(frame, key.encode())
        try:
            assert frame is not None
            data = zstandard.decompress(frame[32:])
            if hashlib.sha256(data).digest() != frame[:32]:
                raise ValueError
            loaded: dict[str, Any] = json.loads(data)
        except (AssertionError, ValueError, zstandard.ZstdError):
            raise BackupError(
                f"backup repository {self.url}: {key} is corrupt or tampered"
            ) from None
        return loaded

    def document_names(self, folder: str) -> list[str]:
        """Names of the documents under `folder`."""
        return sorted(k.rsplit("/", 1)[-1] for k in self.list_keys(folder) if "/.tmp-" not in k)

    # -- raw store access: local files directly, S3 through s3fs ---------------------------------

    def write(self, key: str, blob: bytes, sync: bool = False) -> None:
        """Write `blob` at `key` atomically (whole or not at all)."""
        path = self.store.path(key)
        try:
            if self.local:
                _write_local(Path(path), blob, sync)
            else:
                self.store.fs.pipe_file(path, blob)
        except Exception as exc:  # noqa: BLE001 - any store failure is one line naming the key
            raise BackupError(
                f"backup repository {self.url}: cannot write {key}: {_why(exc)}"
            ) from None

    def read(self, key: str) -> bytes:
        """The bytes at `key`; FileNotFoundError when there are none."""
        path = self.store.path(key)
        try:
            if self.local:
                return Path(path).read_bytes()
            data: bytes = self.store.fs.cat_file(path)
            return data
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BackupError(
                f"backup repository {self.url}: cannot read {key}: {_why(exc)}"
            ) from None

    def list_keys(self, folder: str) -> list[str]:
        """Keys under `folder` (relative to the root)."""
        if not self.local:
            return [key for key, _ in self.list_sizes(folder)]
        base = self.store.path(folder)
        # Names only: a stat per object would cost a backup's start as much as its work.
        found = []
        for dirpath, _dirs, names in os.walk(base):
            prefix = os.path.relpath(dirpath, self.store.root).replace(os.sep, "/")
            found += [f"{prefix}/{n}" for n in names]
        return found

    def list_sizes(self, folder: str) -> Iterator[tuple[str, int]]:
        """Keys under `folder` with their sizes."""
        base = self.store.path(folder)
        try:
            if self.local:
                found = []
                for dirpath, _dirs, names in os.walk(base):
                    for n in names:
                        full = os.path.join(dirpath, n)
                        rel = os.path.relpath(full, self.store.root).replace(os.sep, "/")
                        found.append((rel, os.stat(full).st_size))
                return iter(found)
            listed = self.store.fs.find(base, detail=True)
        except Exception as exc:  # noqa: BLE001
            raise BackupError(
                f"backup repository {self.url}: cannot list {folder}: {_why(exc)}"
            ) from None
        root = self.store.root.rstrip("/") + "/"
        return iter((k[len(root) :], int(v.get("size") or 0)) for k, v in listed.items())

    def delete(self, keys: list[str]) -> None:
        """Remove keys (missing ones are no error)."""
        try:
            if self.local:
                for key in keys:
                    Path(self.store.path(key)).unlink(missing_ok=True)
            elif keys:
                self.store.fs.rm([self.store.path(k) for k in keys])
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001
            raise BackupError(f"backup repository {self.url}: cannot delete: {_why(exc)}") from None

    def clean_temporary(self) -> int:
        """Remove half-written files a killed local writer left (S3 PUTs leave none)."""
        if not self.local:
            return 0
        stale = [k for k in self.list_keys("data") + self.list_keys("snapshots") if "/.tmp-" in k]
        self.delete(stale)
        return len(stale)


def _write_local(path: Path, blob: bytes, sync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{uuid.uuid4().hex}")
    with open(temporary, "wb") as out:
        out.write(blob)
        if sync:
            out.flush()
            os.fsync(out.fileno())
    os.replace(temporary, path)
    if sync:
        # The rename itself must survive a crash once the manifest that relies on it does.
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def repository_secret(settings: Settings) -> bytes | None:
    """The password or key file content configured for backups, if any."""
    if settings.backup_password is not None and settings.backup_password.get_secret_value():
        return settings.backup_password.get_secret_value().encode()
    if settings.backup_key_file is not None:
        try:
            return settings.backup_key_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise KeyProblem(
                f"backup key file {settings.backup_key_file}: {exc.strerror or exc}"
            ) from None
    return None


def open_repository(settings: Settings, create: bool = False) -> Repository:
    """The repository at the configured URL, created (encrypted if a key is set) when asked."""
    url = settings.resolved_backup_url
    store = open_store(url)
    secret = repository_secret(settings)
    probe = Repository(store, None, settings.backup_chunk_bytes)
    try:
        config: dict[str, Any] = json.loads(probe.read("config"))
    except FileNotFoundError:
        if not create:
            raise BackupError(
                f"backup repository {url}: no repository there (no backup yet)"
            ) from None
        config, keys = _new_config(secret, settings.backup_chunk_bytes)
        probe.write("config", json.dumps(config).encode(), sync=True)
        return Repository(store, keys, int(config["chunk_bytes"]))
    except json.JSONDecodeError:
        raise BackupError(f"backup repository {url}: config is not JSON (corrupt)") from None
    if config.get("version") != FORMAT_VERSION:
        raise BackupError(f"backup repository {url}: unknown format {config.get('version')!r}")
    return Repository(store, _keys(config, secret, url), int(config["chunk_bytes"]))


def _new_config(secret: bytes | None, chunk_bytes: int) -> tuple[dict[str, Any], Keys | None]:
    config: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "id": uuid.uuid4().hex,
        "chunk_bytes": chunk_bytes,
        "encryption": None,
    }
    keys = None
    if secret is not None:
        salt = new_salt()
        keys = derive_keys(secret, salt)
        check = key_check(keys)
        config["encryption"] = {
            "cipher": "AES-256-GCM",
            "kdf": "scrypt",
            "salt": base64.b64encode(salt).decode(),
            "check": base64.b64encode(check).decode(),
        }
    return config, keys


def _keys(config: dict[str, Any], secret: bytes | None, url: str) -> Keys | None:
    encryption = config.get("encryption")
    if encryption is None:
        if secret is not None:
            raise KeyProblem(
                f"backup repository {url} is not encrypted, but a backup key is configured "
                "(unset SENECA_BACKUP_PASSWORD / SENECA_BACKUP_KEY_FILE or use a new repository)"
            )
        return None
    if secret is None:
        raise KeyProblem(
            f"backup repository {url} is encrypted: set SENECA_BACKUP_PASSWORD or "
            "SENECA_BACKUP_KEY_FILE"
        )
    keys = derive_keys(secret, base64.b64decode(encryption["salt"]))
    check_key(keys, base64.b64decode(encryption["check"]), url)
    return keys
