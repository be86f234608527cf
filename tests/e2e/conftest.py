"""Fixtures of the end-to-end tests (helpers in e2e.py)."""

import os
import shutil
import tempfile

import pytest

from e2e import APP, SHOTS, Session


@pytest.fixture(scope="session", autouse=True)
def screenshots():
    """One fresh screenshot folder per run, shared by every test file."""
    shutil.rmtree(SHOTS, ignore_errors=True)
    os.makedirs(SHOTS, exist_ok=True)


@pytest.fixture(scope="module")
def session():
    if not os.path.exists(APP):
        pytest.fail("build the app first: " + APP)
    d = tempfile.mkdtemp(prefix="portway-e2e-")
    s = Session(d)
    yield s
    s.shutdown()
    shutil.rmtree(d, ignore_errors=True)
