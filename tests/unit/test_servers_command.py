"""`mailstate servers`: the repository's servers with their counts, whole or as a shard, for
a CI matrix; no server is contacted."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mailstate.cli import main
from mailstate.offline import shard

from .conftest import REPO

EXAMPLE_REPO = REPO / "examples" / "repo"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["servers", str(EXAMPLE_REPO), *args])
    return result.exit_code, result.output


def test_servers_lists_names_counts_and_targets() -> None:
    code, text = run("--format", "json")
    assert code == 0, text
    found = json.loads(text)
    assert [(e["name"], e["domains"], e["mailboxes"]) for e in found] == [
        ("gregorius", 3, 4), ("maximusconfessor", 2, 3)]
    assert found[1]["target"] == "ssh://root@maximusconfessor.all2all.org"
    code, text = run()
    assert code == 0 and text.splitlines()[0].startswith("gregorius\t3 domains\t4 mailboxes")


def test_shards_cover_every_server_once_balanced_by_mailboxes() -> None:
    fleet = [{"name": f"mx{i:03}", "domains": 1, "mailboxes": (i * 37) % 101, "target": None}
             for i in range(200)]
    parts = [shard(fleet, i, 7) for i in range(1, 8)]
    names = [e["name"] for part in parts for e in part]
    assert sorted(names) == sorted(e["name"] for e in fleet)  # each exactly once
    loads = [sum(int(e["mailboxes"]) + 1 for e in part) for part in parts]  # type: ignore[call-overload]
    assert max(loads) - min(loads) <= 101  # within one server of each other
    assert parts == [shard(fleet, i, 7) for i in range(1, 8)]  # the same on every runner


def test_a_bad_shard_is_a_clear_error() -> None:
    for bad in ("x", "0/2", "3/2", "1/0", "1/²"):
        code, text = run("--shard", bad, "--format", "names")
        assert code == 1 and "--shard" in text and "Traceback" not in text, (bad, text)
    code, text = run("--shard", "2/2", "--format", "names")
    assert code == 0 and text.strip() in {"gregorius", "maximusconfessor"}
