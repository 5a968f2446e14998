"""The contract suite must fail an adapter that never calls the network.

``test_publish_reaches_the_network`` holds every installed adapter to touching its network when it
publishes: at least one HTTP request, a message on the SMTP server, a file in the outbox. The
meta-test then runs ``test_contract.py`` and this file against a Mastodon adapter whose
``publish`` answers a made-up receipt without calling anything, and both must fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import responses

from channels.base import ChannelContext
from tests.channels.storybook import key, links_for
from tests.channels.test_contract import CORPUS, PUBLISHERS, ctx, network_for, open_adapter, smtp  # noqa: F401
from tests.conftest import ROOT

HERE = Path(__file__).parent

LAZY = '''
"""Loaded with -p: Mastodon replaced by an adapter that never calls the network."""
import channels.base
from channels.base import Receipt
from channels.mastodon import Mastodon

class LazyMastodon(Mastodon):
    def publish(self, post, key):
        return Receipt(remote_id="109", url="https://mastodon.example/@shop/109")

_installed = channels.base.installed

def installed():
    return {**_installed(), "mastodon": LazyMastodon}

channels.base.installed = installed
'''


@pytest.mark.parametrize("name", PUBLISHERS)
def test_publish_reaches_the_network(
    name: str,
    tmp_path: Path,
    ctx: ChannelContext,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    net = network_for(name, tmp_path, request)
    channel = open_adapter(name, net, ctx)
    story = CORPUS["plain"]
    post = channel.render(story, None, links_for(story))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        net.succeed(rsps)
        channel.publish(post, key())
        calls = len(rsps.calls)
    if name == "email":
        assert request.getfixturevalue("smtp").mailbox.envelopes, "no message reached the server"
    elif name == "outbox":
        assert any(p.is_file() for p in ctx.var_dir.rglob("*")), "nothing written to the outbox"
    else:
        assert calls > 0, f"{name}: publish returned a receipt without a request"


def test_the_contract_suite_fails_an_adapter_that_never_calls_the_network(tmp_path: Path) -> None:
    (tmp_path / "lazy_network.py").write_text(textwrap.dedent(LAZY), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("CI", None)  # the inner run's skips are not this test's business
    suite = [str(HERE / "test_contract.py"), str(HERE / __file__.rsplit("/", 1)[-1])]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "lazy_network",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-k",
            "mastodon",
            *suite,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert done.returncode == 1, done.stdout[-2000:]
    assert any("test_publish_reaches_the_network[mastodon]" in line for line in failed), failed
    assert any("test_each_failure_maps_to_its_class[mastodon-" in line for line in failed), failed
    assert all("mastodon" in line for line in failed), failed
