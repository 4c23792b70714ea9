"""A real moto server in a subprocess on 127.0.0.1, for contract tests of the AWS adapters over HTTP.

- ``moto_server`` (session): starts ``moto_server`` on a free port, waits until it answers, yields its
  URL, stops it at the end.
- ``moto_reset`` (function): POSTs ``/moto-api/reset`` so each test starts from an empty AWS.
- ``aws`` (function): a reset server plus the boto3 settings to reach it (fake credentials, a region).
- ``aws_call_recorder`` (session): every AWS operation the adapters called during the test session, fed by
  the clients the ``aws`` fixture builds; the IAM-policy coverage test reads it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from spot_operator.adapters.aws.clients import AwsClients, AwsConfig, CallRecorder

REGION = "us-east-1"


ACCESS_KEY = "testing"
SECRET_KEY = "testing"
START_TIMEOUT_SECONDS = 240.0  # importing moto takes a minute on a loaded machine
# moto answers in milliseconds, but a loaded CI machine can stall it for many seconds.
READ_TIMEOUT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_command(port: int) -> list[str]:
    """moto's server from the interpreter running the tests (not whichever ``moto_server`` is on PATH)."""
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"moto_server at {url} did not answer within {START_TIMEOUT_SECONDS:.0f}s")


def reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=120.0) as response:
        if response.status != 200:
            raise RuntimeError(f"moto reset answered {response.status}")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    process = subprocess.Popen(
        _moto_command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def moto_reset(moto_server: str) -> str:
    reset(moto_server)
    return moto_server


@pytest.fixture(scope="session")
def aws_call_recorder() -> CallRecorder:
    return CallRecorder()


@dataclass(frozen=True)
class MotoAws:
    url: str
    region: str
    config: AwsConfig
    recorder: CallRecorder

    def clients(
        self,
        endpoint_url: str | None = None,
        recorder: CallRecorder | None = None,
        max_attempts: int | None = None,
    ) -> AwsClients:
        """Adapters' clients against this server (or a proxy in front of it), recording every call."""
        config = AwsConfig(
            endpoint_url=endpoint_url or self.url,
            max_attempts=max_attempts or self.config.max_attempts,
            read_timeout=READ_TIMEOUT_SECONDS,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        clients = AwsClients(config, recorder=self.recorder)
        if recorder is not None:
            clients.add_recorder(recorder)
        return clients

    def boto(self, service: str, region: str | None = None) -> Any:
        """A plain boto3 client for test set-up: its calls are neither counted nor recorded."""
        session: Any = boto3.session.Session()
        return session.client(
            service,
            config=Config(
                read_timeout=READ_TIMEOUT_SECONDS, retries={"mode": "standard", "total_max_attempts": 2}
            ),
            region_name=region or self.region,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@pytest.fixture
def aws(moto_reset: str, aws_call_recorder: CallRecorder) -> MotoAws:
    config = AwsConfig(
        endpoint_url=moto_reset,
        max_attempts=2,
        read_timeout=READ_TIMEOUT_SECONDS,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    return MotoAws(moto_reset, REGION, config, aws_call_recorder)
