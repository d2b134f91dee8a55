"""Fixtures for integration tests: real test hosts (see tests/testhost).

Without root or the Debian packages the tests are skipped, with the reason; with
MAILSTATE_REQUIRE_INTEGRATION=1 (set by CI) they fail instead, so CI cannot go green by
skipping everything.

Every test that uses `host`, `site` or `testhost` runs once per Debian release (12: the
machine's own packages, 13: a cached Debian 13 root, see tests/testhost/rootfs.py);
MAILSTATE_TESTHOST_RELEASES (e.g. "13") narrows that to some of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.integration.mail import Site
from tests.testhost import RELEASES, TestHost, missing_requirements

SELECTED_RELEASES = os.environ.get("MAILSTATE_TESTHOST_RELEASES", " ".join(RELEASES)).split()
RELEASE_PARAMS = [pytest.param(r, id=f"debian{r}") for r in SELECTED_RELEASES]


def require_testhost_environment(release: str | None = None) -> None:
    """Skip (or, under MAILSTATE_REQUIRE_INTEGRATION=1, fail) when test hosts cannot run."""
    missing = missing_requirements(release)
    if not missing:
        return
    reason = (
        "integration tests need root and the Debian mail packages "
        f"(.ci/install-debian-packages.sh); missing: {', '.join(missing)}"
    )
    if os.environ.get("MAILSTATE_REQUIRE_INTEGRATION") == "1":
        pytest.fail(reason + " [MAILSTATE_REQUIRE_INTEGRATION=1]", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def testhost_environment() -> None:
    """Depend on this in a test that starts its own TestHost."""
    require_testhost_environment()


@pytest.fixture(scope="session", params=RELEASE_PARAMS)
def testhost(request: pytest.FixtureRequest, testhost_environment: None) -> Iterator[TestHost]:
    """One started test host per release, shared by the whole session (mail.test)."""
    require_testhost_environment(request.param)
    with TestHost("mail", release=request.param) as host:
        yield host


@pytest.fixture(params=RELEASE_PARAMS)
def release(request: pytest.FixtureRequest) -> str:
    """Each Debian release in turn, for a test that starts its own hosts (start_testhost)."""
    require_testhost_environment(request.param)
    return str(request.param)


@pytest.fixture
def start_testhost(testhost_environment: None) -> Iterator[Callable[..., TestHost]]:
    """A function that starts an extra host (e.g. `start_testhost("mx2")`), stopped after the
    test. Each host gets its own namespaces, /24, SMTP sink, keys and files."""
    hosts: list[TestHost] = []

    def start(name: str = "extra", domain: str = "test", release: str | None = None) -> TestHost:
        require_testhost_environment(release)
        host = TestHost(name, domain, release)
        host.start()
        hosts.append(host)
        return host

    yield start
    for host in reversed(hosts):
        host.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, attach the tails of the hosts' logs to the report: that is where the
    reason usually is (a reload that failed, a deferred message, a refused login)."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for value in funcargs.values():
        if isinstance(value, TestHost) and value.base is not None:
            for name in ("testhost-init", "postfix", "dovecot", "postgrey", "sshd"):
                text = value.read_log(name)[-4000:]
                if text:
                    report.sections.append((f"{value.fqdn} {name}.log", text))


@pytest.fixture(scope="module", params=RELEASE_PARAMS)
def host(request: pytest.FixtureRequest, testhost_environment: None) -> Iterator[TestHost]:
    """One test host per test module and release, named by the module's HOST_NAME."""
    require_testhost_environment(request.param)
    with TestHost(request.module.HOST_NAME, release=request.param) as started:
        yield started


@pytest.fixture(scope="module")
def site(host: TestHost, tmp_path_factory: pytest.TempPathFactory) -> Site:
    """A repository of domain files applied to the module's host (see mail.py)."""
    return Site.create(host, tmp_path_factory.mktemp("repo"))

