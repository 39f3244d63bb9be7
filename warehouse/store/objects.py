"""Object storage by URL: a local directory or `s3://bucket/prefix`, as one fsspec filesystem.

The cold tier, the archive and backup repositories all live at such a URL. S3 is configured the
standard way (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `AWS_REGION`),
which botocore under s3fs reads itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warehouse.errors import SettingsError


@dataclass(frozen=True)
class ObjectStore:
    """A filesystem and the root path inside it that a URL names."""

    url: str
    fs: Any  # fsspec.AbstractFileSystem; fsspec ships no type information
    root: str

    @property
    def is_remote(self) -> bool:
        """True for object storage reached over the network (S3)."""
        return self.url.startswith("s3://")

    def path(self, *parts: str) -> str:
        """The filesystem path of a key under the root."""
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts)])

    def url_of(self, *parts: str) -> str:
        """The URL of a key under the root, as DuckDB and the catalog name it."""
        key = "/".join(p.strip("/") for p in parts)
        return f"{self.url.rstrip('/')}/{key}"


def open_store(url: str | Path) -> ObjectStore:
    """The object store at `url`: an `s3://bucket[/prefix]` URL or a local directory."""
    text = str(url)
    if text.startswith("s3://"):
        bucket_and_prefix = text[len("s3://") :].strip("/")
        if not bucket_and_prefix:
            raise SettingsError(f"object storage URL {text!r} names no bucket")
        import s3fs

        # Caching listings would hide objects another worker wrote a moment ago.
        fs = s3fs.S3FileSystem(
            use_listings_cache=False,
            client_kwargs=_endpoint_kwargs(),
            config_kwargs={"retries": {"max_attempts": 3, "mode": "standard"}},
        )
        return ObjectStore(f"s3://{bucket_and_prefix}", fs, bucket_and_prefix)
    if "://" in text and not text.startswith("file://"):
        raise SettingsError(f"object storage URL {text!r}: only s3:// and local paths work")
    from fsspec.implementations.local import LocalFileSystem

    local = Path(text.removeprefix("file://")).expanduser().absolute()
    return ObjectStore(str(local), LocalFileSystem(auto_mkdir=True), str(local))


def _endpoint_kwargs() -> dict[str, str]:
    # Recent botocore reads AWS_ENDPOINT_URL itself; passing it as well keeps s3fs and DuckDB's
    # registered filesystem on the same endpoint whatever botocore version resolves.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"endpoint_url": endpoint} if endpoint else {}


def register_stores(db: Any, paths: Iterable[str]) -> None:
    """Let a DuckDB connection read the `s3://` files among `paths` through s3fs.

    DuckDB's own httpfs cannot be installed offline; a registered fsspec filesystem serves its
    protocol for every bucket, with the same AWS_* configuration as `open_store`.
    """
    remote = [p for p in paths if p.startswith("s3://")]
    if remote and "s3" not in _registered(db):
        bucket = remote[0][len("s3://") :].split("/")[0]
        db.register_filesystem(open_store(f"s3://{bucket}").fs)


def _registered(db: Any) -> set[str]:
    try:
        return {str(name) for name in db.list_filesystems()}
    except Exception:  # noqa: BLE001 - an older DuckDB without the listing registers again
        return set()
