"""Per-file records (``mailstate.config.file_records``): a domain file whose bytes were found
valid is taken from its record, and every output is byte for byte what a run without records
(``--no-cache``) gives, whatever the sequence of edits; unsafe or damaged records are ignored."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstate.cli import main
from mailstate.config import file_records
from mailstate.config.file_records import FileRecords
from mailstate.config.validation import run

HASH = ("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$cA5B6D1nTIlRKuWcU2qt9Q$"
        "y8AONqAfifKKZVjyxj9nHQu2IzUJDKM9StmxylEpdic")
ACCOUNTS = ["alpha", "beta", "gamma"]


def domain_text(account: str, boxes: dict[str, str], aliases: dict[str, str],
                extra: str) -> str:
    lines = [f"domain: {account}.be", f"account: {account}", "mailboxes:"]
    for login, quota in boxes.items():
        lines += [f"  {login}:", f"    name: User {login}", f'    password: "{HASH}"',
                  f"    quota: {quota}"]
    if aliases:
        lines.append("aliases:")
        lines += [f"  {local}: [{target}]" for local, target in aliases.items()]
    return "\n".join(lines) + "\n" + extra


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "domains").mkdir(parents=True)
    accounts = "".join(f"  {a}: {{plan: extended, domains: [{a}.be]}}\n" for a in ACCOUNTS)
    (repo / "mailstate.yaml").write_text(
        f"servers:\n  mx1:\n    target: 'local:{root / 'server'}'\naccounts:\n{accounts}")
    return repo


# One edit: (which account's file, what to do, a parameter). The kinds make valid files,
# warnings, errors inside one file, errors across files (a login or domain used twice, an
# alias to an address that does not exist), broken YAML, deletion, and going back to an
# earlier version of a file (whose record is then found).
EDIT = st.tuples(st.sampled_from(ACCOUNTS),
                 st.sampled_from(["quota", "add", "remove", "alias", "dangling", "clash",
                                  "domain clash", "odd login", "unknown key", "syntax",
                                  "delete", "revert"]),
                 st.integers(0, 3))


def outputs(repo: Path) -> dict[str, tuple[int, str]]:
    """validate (text, plain, github) and plan (text, JSON) with and without records."""
    runner = CliRunner()
    out = {}
    for cached in (True, False):
        flag = [] if cached else ["--no-cache"]
        for name, args in (("validate", ["validate", str(repo)]),
                           ("validate plain", ["validate", str(repo), "--format", "plain"]),
                           ("validate github", ["validate", str(repo), "--format", "github"]),
                           ("plan", ["plan", str(repo)]),
                           ("plan json", ["plan", str(repo), "--format", "json"])):
            result = runner.invoke(main, [*args, *flag], catch_exceptions=False)
            out[f"{name} {'cached' if cached else 'full'}"] = (result.exit_code,
                                                                 result.stdout + result.stderr)
    return out


def without_times(text: str) -> str:
    """Progress lines carry the time they were printed and how long a step took."""
    return "\n".join(line for line in text.splitlines() if not line[:2].isdigit())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EDIT, min_size=1, max_size=7))
def test_any_sequence_of_edits_gives_what_a_full_run_gives(edits: list) -> None:
    before = os.environ.get(file_records.ENV)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ[file_records.ENV] = str(Path(tmp) / "cache")
            edit_and_compare(Path(tmp), edits)
    finally:
        if before is None:
            os.environ.pop(file_records.ENV, None)
        else:
            os.environ[file_records.ENV] = before


def edit_and_compare(root: Path, edits: list) -> None:
    repo = make_repo(root)
    state = {a: ({a: "1G", f"{a}0001": "1G"}, {}, "") for a in ACCOUNTS}
    history: dict[str, list[str]] = {a: [] for a in ACCOUNTS}

    def save(account: str) -> None:
        boxes, aliases, extra = state[account]
        text = domain_text(account, boxes, aliases, extra)
        history[account].append(text)
        (repo / "domains" / f"{account}.be.yaml").write_text(text)

    for account in ACCOUNTS:
        save(account)
    for account, kind, n in edits:
        boxes, aliases, extra = state[account]
        path = repo / "domains" / f"{account}.be.yaml"
        if kind == "delete":
            path.unlink(missing_ok=True)
        elif kind == "revert":
            path.write_text(history[account][n % len(history[account])])
        elif kind == "syntax":
            path.write_text(domain_text(account, boxes, aliases, extra) + "  bad: [\n")
        else:
            boxes, aliases = dict(boxes), dict(aliases)
            other = ACCOUNTS[(ACCOUNTS.index(account) + 1) % len(ACCOUNTS)]
            if kind == "quota":
                boxes[next(iter(boxes))] = f"{n + 1}G"
            elif kind == "add":
                boxes[f"{account}{n + 2:04d}"] = "2G"
            elif kind == "remove" and len(boxes) > 1:
                boxes.pop(list(boxes)[-1])
            elif kind == "alias":
                aliases[f"info{n}"] = f"{account}@{account}.be"
            elif kind == "dangling":
                aliases[f"lost{n}"] = f"nobody{n}@{other}.be"
            elif kind == "clash":
                boxes[f"{other}0001"] = "1G"
            elif kind == "domain clash":
                extra = f"domain_aliases: [{other}.be]\n"
            elif kind == "odd login":
                boxes[f"x{n}"] = "1G"
            elif kind == "unknown key":
                extra = "greylist: false\n"
            state[account] = (boxes, aliases, extra)
            save(account)
        got = outputs(repo)
        for name in ("validate", "validate plain", "validate github", "plan", "plan json"):
            cached, full = got[f"{name} cached"], got[f"{name} full"]
            assert cached[0] == full[0], (name, cached, full)
            assert without_times(cached[1]) == without_times(full[1]), name


def test_a_recorded_file_is_not_read_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(file_records.ENV, str(tmp_path / "cache"))
    repo = make_repo(tmp_path)
    for account in ACCOUNTS:
        (repo / "domains" / f"{account}.be.yaml").write_text(
            domain_text(account, {account: "1G"}, {}, ""))
    run([str(repo)], cache=True)
    records = list((tmp_path / "cache" / "files").glob("??/*.json"))
    assert len(records) == 3
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in records)
    assert (tmp_path / "cache" / "files").stat().st_mode & 0o777 == 0o700

    reads = _count_reads(monkeypatch)
    desired, _ = run([str(repo)], cache=True)
    assert desired is not None
    assert [r for r in reads if r.endswith(".be.yaml")] == []  # none of the domain files
    (repo / "domains" / "beta.be.yaml").write_text(domain_text("beta", {"beta": "2G"}, {}, ""))
    run([str(repo)], cache=True)
    assert [Path(r).name for r in reads if r.endswith(".be.yaml")] == ["beta.be.yaml"]


def _count_reads(monkeypatch) -> list[str]:
    """The paths read_yaml is asked to read from here on."""
    import mailstate.config.yaml_reader as reader

    reads: list[str] = []
    real = reader.read_yaml

    def counted(*args: object, **kwargs: object) -> object:
        reads.append(str(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(reader, "read_yaml", counted)
    return reads


def _one_record(tmp_path: Path, monkeypatch) -> tuple[Path, Path, bytes]:
    monkeypatch.setenv(file_records.ENV, str(tmp_path / "cache"))
    repo = make_repo(tmp_path)
    raw = domain_text("alpha", {"alpha": "1G"}, {}, "").encode()
    (repo / "domains" / "alpha.be.yaml").write_bytes(raw)
    run([str(repo)], cache=True)
    (record,) = (tmp_path / "cache" / "files").glob("??/*.json")
    return repo, record, raw


def test_a_damaged_foreign_or_unsafe_record_is_ignored(tmp_path: Path, monkeypatch) -> None:
    repo, record, raw = _one_record(tmp_path, monkeypatch)
    from mailstate.schema import DomainFile

    assert FileRecords().recall(raw, DomainFile) is not None
    good = record.read_text()
    for damaged in ["{not json", json.dumps({**json.loads(good), "format": 99}),
                    json.dumps({**json.loads(good), "name": "0" * 64}),
                    json.dumps({**json.loads(good), "model": {"domain": "x.be"}}),
                    json.dumps({**json.loads(good), "model": {**json.loads(good)["model"],
                                                              "surprise": 1}})]:
        record.write_text(damaged)
        assert FileRecords().recall(raw, DomainFile) is None, damaged
        desired, issues = run([str(repo)], cache=True)  # read in full instead
        assert desired is not None and not issues
    record.write_text(good)
    record.chmod(0o666)  # writable by others: anyone could have put a model there
    assert FileRecords().recall(raw, DomainFile) is None
    record.chmod(0o600)
    record.parent.parent.chmod(0o777)  # a folder others can write
    assert FileRecords().recall(raw, DomainFile) is None
    record.parent.parent.chmod(0o700)
    assert FileRecords().recall(raw, DomainFile) is not None


def test_a_record_is_found_from_another_path_and_no_cache_reads_in_full(
        tmp_path: Path, monkeypatch) -> None:
    repo, _, raw = _one_record(tmp_path, monkeypatch)
    other = tmp_path / "other"
    other.mkdir()
    (other / "mailstate.yaml").write_text((repo / "mailstate.yaml").read_text())
    (other / "domains").mkdir()
    (other / "domains" / "alpha.be.yaml").write_bytes(raw)

    reads = _count_reads(monkeypatch)
    run([str(other)], cache=True)
    assert not [r for r in reads if r.endswith(".be.yaml")]
    run([str(other)], cache=False)
    assert [Path(r).name for r in reads if r.endswith(".be.yaml")] == ["alpha.be.yaml"]
