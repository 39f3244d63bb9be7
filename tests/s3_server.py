"""A real S3 protocol server (moto's threaded server) on 127.0.0.1 for tier and backup tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass
class S3Server:
    """A running S3 server and the settings a client needs to reach it."""

    endpoint: str
    server: object

    def env(self) -> dict[str, str]:
        """The standard AWS variables pointing at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "seneca-test",
            "AWS_SECRET_ACCESS_KEY": "seneca-test",
            "AWS_REGION": "us-east-1",
        }

    def make_bucket(self, name: str) -> str:
        """Create a bucket and return its `s3://` URL."""
        import boto3

        env = self.env()
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        ).create_bucket(Bucket=name)
        return f"s3://{name}"

    def stop(self) -> None:
        """Stop serving: clients now meet a dead endpoint."""
        self.server.stop()  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_s3(monkeypatch: pytest.MonkeyPatch | None = None) -> Iterator[S3Server]:
    """Start moto's ThreadedMotoServer on a free loopback port; the AWS_* variables point at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    s3 = S3Server(f"http://127.0.0.1:{port}", server)
    if monkeypatch is not None:
        for key, value in s3.env().items():
            monkeypatch.setenv(key, value)
    try:
        yield s3
    finally:
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - a test may already have stopped it on purpose
            pass


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A fresh S3 server for one test, with AWS_* set for this process and its children."""
    with running_s3(monkeypatch) as server:
        yield server
