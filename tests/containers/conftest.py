"""The testcontainers tests: PostgreSQL 15 + pg_cron in a container of the project's image.

The rest of the suite stays on the session's server (tests/conftest.py, the embedded cluster
here). When a test of this directory is selected, a :class:`ContainerSession` starts in the
background as soon as collection ends (engine, image, container, the real cron tick in it), so
the first image build and pg_cron's minute overlap the other suites; its end stops the
container and whatever engine the session started (scripts/container-engine.sh down).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.containers.engine import ContainerSession

HERE = Path(__file__).resolve().parent
_session: ContainerSession | None = None


def pytest_collection_finish(session):
    global _session
    if session.config.option.collectonly or _session is not None:
        return
    mine = [item for item in session.items if Path(str(item.fspath)).resolve().is_relative_to(HERE)]
    if mine:
        _session = ContainerSession(cron_tick=any("container_cron_tick" in i.fixturenames for i in mine))


def pytest_sessionfinish(session):
    if _session is not None:
        _session.stop()


def pytest_terminal_summary(terminalreporter):
    if _session is None:
        return
    terminalreporter.section("containers (tests/containers)")
    if _session.skip_reason:
        terminalreporter.write_line(f"skipped: {_session.skip_reason}")
    for line in _session.engine_log.splitlines():
        if line.startswith("container-engine: ") and ("built" in line or "installing" in line):
            terminalreporter.write_line(line)
    for step, seconds in _session.timings:
        terminalreporter.write_line(f"{step}: {seconds:.1f} s")
    if _session.image:
        terminalreporter.write_line(f"image: {_session.image}")


@pytest.fixture(scope="session")
def container_session() -> ContainerSession:
    """The session's container (waiting for it), a skip where no engine can run, or the error."""
    assert _session is not None, "the container session was not started at collection"
    _session.wait()
    if _session.skip_reason:
        pytest.skip(_session.skip_reason)
    if _session.failure is not None:
        raise _session.failure
    return _session


@pytest.fixture
def container_db(container_session) -> str:
    """A new empty database in the container (pg_cron does not run in it)."""
    return container_session.create_database()


@pytest.fixture
def container_cron_tick(container_session):
    """The real pg_cron tick awaited in the container's cron database (tests.conftest.RealCronTick)."""
    assert container_session.cron_tick is not None, "the session did not start the cron tick"
    return container_session.cron_tick.wait()
