"""The CI recipes in examples/ci/ run: their shell steps, against examples/repo, on local targets.

Each recipe is read as the forge reads it; every `run:` (GitHub) or `script:` (GitLab) step
runs with bash in a git checkout of examples/repo (with a third server, so that the fleet is
sharded: GitHub's matrix of servers, GitLab's ``parallel:matrix`` of shards), the servers as
local directories (``MAILSTATE_TARGET`` names all of them, for every job), the forge's API
answered by the stand-ins in ``fakes/`` (``gh`` and ``curl``, with the real jq), and the
forge's expressions filled in. Only the install step is skipped (the package under test is
already installed). A pull request is checked for its account, planned per server twice (one
combined comment, updated in place), merged and applied per shard with each shard's reviewed
checksum; then a change pushed after the review is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from ruamel.yaml import YAML

CI = REPO / "examples" / "ci"
FAKES = Path(__file__).parent / "fakes"
MARKER = "<!-- mailstate-plan -->"
SHA = "c0ffee"
SKIPPED = {"Install mailstate"}  # pip install of the released package
USES = {"actions/checkout@v4", "actions/setup-python@v5", "actions/upload-artifact@v4",
        "actions/download-artifact@v4"}
SERVERS = ("maximusconfessor", "gregorius", "benedictus")
THIRD = """  benedictus:
    target: ssh://root@benedictus.all2all.org
    known_hosts: known_hosts
"""
CHECKSUM = re.compile(r"ms1:[0-9a-f]{8}:[0-9a-f]{32}")

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is needed by fake gh")


def load(name: str) -> Any:
    return YAML(typ="safe").load((CI / name).read_text())


class Forge:
    """A git checkout of examples/repo (branch `change` off `main`, pushed to a bare
    `origin`), local servers, and the fake forge's state."""

    def __init__(self, tmp: Path) -> None:
        self.repo = tmp / "repo"
        shutil.copytree(REPO / "examples" / "repo", self.repo)
        config = self.repo / "mailstate.yaml"
        config.write_text(config.read_text().replace("  gregorius:\n", THIRD + "  gregorius:\n", 1))
        events = self.repo / "domains/artstudio/artstudio-events.be.yaml"
        text = events.read_text()
        assert "server: gregorius" in text
        events.write_text(text.replace("server: gregorius", "server: benedictus"))
        self.servers = tmp / "servers"
        self.home = tmp / "home"
        self.home.mkdir()
        self.state = tmp / "forge.json"
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for fake in ("gh", "curl"):
            shutil.copy(FAKES / fake, self.bin / fake)
        (self.bin / "mailstate").write_text(
            f"#!/bin/sh\nexec {sys.executable} -P -m mailstate \"$@\"\n")
        (self.bin / "mailstate").chmod(0o755)
        (self.bin / "python3").symlink_to(sys.executable)
        self.save({"comments": [], "pulls": {}, "user": 7, "notes": [], "mrs": {}})
        self.git("init", "-q", "-b", "main")
        self.commit("the provider's repository")
        subprocess.run(["git", "init", "-q", "--bare", str(tmp / "origin.git")], check=True)
        self.git("remote", "add", "origin", str(tmp / "origin.git"))
        self.git("push", "-q", "origin", "main")
        self.git("checkout", "-q", "-b", "change")

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                               *args], cwd=self.repo, capture_output=True, text=True,
                              check=True, env={**os.environ, "HOME": str(self.home)})
        return done.stdout

    def commit(self, message: str) -> None:
        # the repository's own files only: the jobs share this folder, where a forge gives
        # each job a fresh checkout, and their plan files are no part of a change
        self.git("add", "-A", "--", "domains", "mailstate.yaml", "known_hosts", "CODEOWNERS")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def fresh_checkout(self) -> None:
        """As a forge's job starts: no file of an earlier job (the jobs share this folder)."""
        self.git("clean", "-fdxq")

    def save(self, data: dict[str, Any]) -> None:
        self.state.write_text(json.dumps(data))

    def load(self) -> dict[str, Any]:
        return json.loads(self.state.read_text())

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{os.environ['PATH']}", "HOME": str(self.home),
                "FAKE_FORGE_STATE": str(self.state), "LANG": "C.UTF-8",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "MAILSTATE_TARGET": " ".join(f"{name}=local:{self.servers}/{name}"
                                             for name in SERVERS)}

    def bash(self, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                              cwd=self.repo, env=env, capture_output=True, text=True,
                              timeout=300)
        for part in ("$argon2id$", "{ARGON2ID}", "$2y$", "$6$"):  # no hash in any job log
            assert part not in done.stdout + done.stderr
        for comment in self.load()["comments"] + self.load()["notes"]:
            assert "$argon2id$" not in comment["body"]
        return done

    def edit(self, old: str, new: str, name: str = "monsite/monsite.be.yaml") -> None:
        path = self.repo / "domains" / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
        self.commit(f"edit {name}")


# ---------------------------------------------------------------- GitHub Actions

EXPRESSIONS = {
    "secrets.MAILSTATE_READ_ONLY_KEY": "", "secrets.MAILSTATE_APPLY_KEY": "",
    "github.token": "test-token", "github.repository": "provider/mail",
    "github.event.pull_request.number": "42", "github.event.pull_request.head.sha": SHA,
    "github.event.pull_request.base.ref": "main",
    "github.event.pull_request.user.login": "customer-monsite",
    "github.server_url": "https://github.example", "github.run_id": "99", "github.sha": SHA,
    "vars.MAILSTATE_OPERATORS": "alice bob", "vars.MAILSTATE_ACCOUNT": "",
}


def fill(text: str, context: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in context, f"the test does not know ${{{{ {expression} }}}}"
        return context[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(text))


def run_github_job(forge: Forge, name: str, context: dict[str, str] | None = None
                   ) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """One job (one matrix entry): its result and its outputs."""
    workflow = load("github-actions.yml")
    job = workflow["jobs"][name]
    context = {**EXPRESSIONS, **(context or {})}
    if name == "check":
        forge.fresh_checkout()
    env = {**forge.env(), **{k: fill(v, context) for k, v in workflow.get("env", {}).items()}}
    github_env, github_output = forge.repo.parent / "github_env", forge.repo.parent / "out"
    github_env.write_text("")
    env["GITHUB_ENV"] = str(github_env)
    out, err = [], []
    steps: dict[str, str] = {}
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"] in USES, step["uses"]
            if step["uses"].startswith("actions/upload-artifact"):
                for path in fill(step["with"]["path"], context).split():
                    assert (forge.repo / path).is_file(), f"artefact {path} was not made"
            continue
        if step["name"] in SKIPPED:
            continue
        github_output.write_text("")
        step_env = {**env, **{k: fill(v, context) for k, v in step.get("env", {}).items()},
                    "GITHUB_OUTPUT": str(github_output)}
        result = forge.bash(fill(step["run"], context), step_env)
        out.append(result.stdout)
        err.append(result.stderr)
        if result.returncode != 0:
            return subprocess.CompletedProcess([], result.returncode, "".join(out),
                                               "".join(err)), {}
        for line in github_env.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        for line in github_output.read_text().splitlines():
            key, _, value = line.partition("=")
            steps[f"steps.{step.get('id')}.outputs.{key}"] = value
    outputs = {k: fill(v, steps) for k, v in job.get("outputs", {}).items()}
    return subprocess.CompletedProcess([], 0, "".join(out), "".join(err)), outputs


def run_github(forge: Forge, event: str, **context: str) -> dict[str, Any]:
    """The jobs of one event in order, each matrix entry as its own job: {job: result} (a
    matrix job: {job: {server: result}}); stops at the first failure."""
    workflow = load("github-actions.yml")
    first, sharded, last = (("check", "plan", "comment") if event == "pull_request_target"
                            else ("servers", "apply", None))
    done: dict[str, Any] = {}
    result, outputs = run_github_job(forge, first, context)
    done[first] = result
    if result.returncode != 0:
        return done
    matrix = workflow["jobs"][sharded]["strategy"]["matrix"]["server"]
    assert matrix == f"${{{{ fromJSON(needs.{first}.outputs.servers) }}}}"
    done[sharded] = {}
    for server in json.loads(outputs["servers"]):
        done[sharded][server], _ = run_github_job(forge, sharded,
                                                  {**context, "matrix.server": server})
        if done[sharded][server].returncode != 0:
            return done
    if last:
        done[last], _ = run_github_job(forge, last, context)
    return done


def ok(done: dict[str, Any]) -> bool:
    results = [r for v in done.values() for r in (v.values() if isinstance(v, dict) else [v])]
    return all(r.returncode == 0 for r in results)


def shards(body: str) -> dict[str, str]:
    return dict(re.findall(r"<!-- mailstate-shard (\S+) (\S+) -->", body))


def test_the_github_workflow_plans_per_server_comments_once_and_applies_what_was_reviewed(
        tmp_path: Path) -> None:
    workflow = load("github-actions.yml")
    assert {s.get("name") for j in workflow["jobs"].values() for s in j["steps"]} >= SKIPPED
    forge = Forge(tmp_path)
    forge.edit("quota: 10G", "quota: 9G")

    first = run_github(forge, "pull_request_target")
    assert ok(first) and set(first["plan"]) == set(SERVERS), first
    assert "Account: monsite" in first["check"].stdout
    forge.edit("quota: 9G", "quota: 8G")  # a second push to the same pull request
    second = run_github(forge, "pull_request_target")
    assert ok(second), second
    [comment] = forge.load()["comments"]  # posted once, then updated in place
    assert comment["body"].startswith(MARKER + "\n### mailstate plan of 3 server(s)")
    assert [m for m, _ in forge.load()["log"] if m != "GET"] == ["POST", "PATCH"]
    reviewed = shards(comment["body"])
    assert set(reviewed) == set(SERVERS)
    assert CHECKSUM.fullmatch(reviewed["maximusconfessor"])  # monsite.be is there
    assert reviewed["maximusconfessor"] in (forge.repo / "plan-maximusconfessor.txt").read_text()
    assert "<code>monsite.be</code> on maximusconfessor" in comment["body"]

    state = forge.load()
    state["pulls"][SHA] = [{"number": 42}]
    forge.save(state)
    applied = run_github(forge, "push")
    assert ok(applied), applied
    assert "Apply complete." in applied["apply"]["maximusconfessor"].stdout
    for server in SERVERS:
        assert (forge.servers / server / "etc/dovecot/mailstate/passwd").is_file(), server

    # a pull request whose last push was not planned: that server's shard refuses
    forge.edit("quota: 8G", "quota: 7G")
    assert ok(run_github(forge, "pull_request_target"))
    forge.edit("quota: 7G", "quota: 6G")
    refused = run_github(forge, "push")
    assert refused["apply"]["maximusconfessor"].returncode == 1
    assert "not the ones that plan was made from" in refused["apply"]["maximusconfessor"].stderr
    # a push with changes but no pull request is refused too
    forge.save({**forge.load(), "pulls": {}})
    unreviewed = run_github(forge, "push")
    mx = unreviewed["apply"]["maximusconfessor"]
    assert mx.returncode == 1 and "without a reviewed plan" in mx.stderr


def test_a_customer_pull_request_is_held_to_its_account(tmp_path: Path) -> None:
    forge = Forge(tmp_path)
    forge.edit("quota: 10G", "quota: 9G")
    forge.edit("domain: bakkerijpeeters.be", "domain: bakkerijpeeters.be\n",
               "bakkerij/bakkerijpeeters.be.yaml")
    two = run_github(forge, "pull_request_target")
    assert two["check"].returncode == 1 and "plan" not in two
    assert "changes the files of one account" in two["check"].stdout
    assert "bakkerij monsite" in two["check"].stdout
    assert forge.load()["comments"] == []
    # the account named by the operator: the other account's file is refused by mailstate
    named = run_github(forge, "pull_request_target", **{"vars.MAILSTATE_ACCOUNT": "monsite"})
    assert named["check"].returncode == 1 and "plan" not in named
    assert "domains/bakkerij/bakkerijpeeters.be.yaml" in named["check"].stdout
    # an operator may change anything (code owners review it)
    operator = run_github(forge, "pull_request_target",
                          **{"github.event.pull_request.user.login": "alice"})
    assert ok(operator), operator


def test_a_customer_may_not_change_the_operators_file(tmp_path: Path) -> None:
    forge = Forge(tmp_path)
    config = forge.repo / "mailstate.yaml"
    config.write_text(config.read_text().replace("delay: 15m", "delay: 16m", 1))
    forge.commit("greylisting")
    result = run_github(forge, "pull_request_target")
    assert result["check"].returncode == 1
    assert "(outside domains/<account>/)" in result["check"].stdout


def test_validate_annotates_the_pull_request(tmp_path: Path) -> None:
    forge = Forge(tmp_path)
    forge.edit("domain: monsite.be", "domain: monsite.be\nbogus: 1")
    result = run_github(forge, "pull_request_target")["check"]
    assert result.returncode == 1
    assert result.stdout.startswith("::error file=domains/monsite/monsite.be.yaml,line=")
    assert "title=mailstate error::unknown key 'bogus'" in result.stdout
    assert forge.load()["comments"] == []


def test_servers_outside_the_run_may_be_targets_but_unknown_names_not(tmp_path: Path) -> None:
    forge = Forge(tmp_path)
    env = forge.env()
    one = forge.bash("mailstate plan --server gregorius", env)
    assert one.returncode == 0, one.stderr
    env["MAILSTATE_TARGET"] += f" nosuch=local:{tmp_path}/x"
    bad = forge.bash("mailstate plan --server gregorius", env)
    assert bad.returncode == 1 and "'nosuch', which is not in this repository" in bad.stderr


# ---------------------------------------------------------------- GitLab CI

def run_gitlab_job(forge: Forge, name: str, **variables: str) -> subprocess.CompletedProcess[str]:
    pipeline = load("gitlab-ci.yml")
    job = pipeline[name]
    assert all("pip install" in line or "apt-get" in line
               for line in pipeline["default"]["before_script"])  # the install, skipped
    env = {**forge.env(), **{k: str(v) for k, v in pipeline["variables"].items()},
           "CI_API_V4_URL": "https://gitlab.example/api/v4", "CI_PROJECT_ID": "9",
           "CI_MERGE_REQUEST_IID": "42", "CI_JOB_URL": "https://gitlab.example/job/1",
           "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "GITLAB_USER_LOGIN": "customer",
           "MAILSTATE_OPERATORS": "alice",
           "CI_COMMIT_SHA": SHA, "MAILSTATE_GITLAB_TOKEN": "test-token",
           "MAILSTATE_READ_ONLY_KEY": "", "MAILSTATE_APPLY_KEY": "", **variables}
    if name == "mailstate-validate":
        forge.fresh_checkout()
    return forge.bash("\n".join(job["script"]), env)


def run_gitlab_sharded(forge: Forge, name: str) -> dict[str, subprocess.CompletedProcess[str]]:
    pipeline = load("gitlab-ci.yml")
    [entry] = pipeline[name]["parallel"]["matrix"]
    assert len(entry["SHARD"]) == int(pipeline["variables"]["MAILSTATE_SHARDS"])
    return {shard: run_gitlab_job(forge, name, SHARD=shard) for shard in entry["SHARD"]}


def test_the_gitlab_pipeline_plans_in_shards_notes_once_and_applies_what_was_reviewed(
        tmp_path: Path) -> None:
    forge = Forge(tmp_path)
    forge.edit("quota: 10G", "quota: 9G")
    checked = run_gitlab_job(forge, "mailstate-validate")
    assert checked.returncode == 0 and "Account: monsite" in checked.stdout, checked.stderr
    for _ in range(2):
        planned = run_gitlab_sharded(forge, "mailstate-plan")
        assert all(r.returncode == 0 for r in planned.values()), planned
        assert run_gitlab_job(forge, "mailstate-comment").returncode == 0
    assert sum("holds no server" in r.stdout for r in planned.values()) == 1  # 3 servers, 4 shards
    [note] = forge.load()["notes"]
    assert note["body"].startswith(MARKER + "\n### mailstate plan in 4 shard(s)")
    reviewed = shards(note["body"])
    assert len(reviewed) == 3 and all(CHECKSUM.fullmatch(v) for v in reviewed.values())
    state = forge.load()
    state["mrs"][SHA] = [{"iid": 42}]
    forge.save(state)
    applied = run_gitlab_sharded(forge, "mailstate-apply")
    assert all(r.returncode == 0 for r in applied.values()), applied
    assert sum("Apply complete." in r.stdout for r in applied.values()) == 3
    for server in SERVERS:
        assert (forge.servers / server / "etc/dovecot/mailstate/passwd").is_file(), server

    forge.edit("quota: 9G", "quota: 8G")
    run_gitlab_sharded(forge, "mailstate-plan")
    assert run_gitlab_job(forge, "mailstate-comment").returncode == 0
    forge.edit("quota: 8G", "quota: 7G")
    refused = run_gitlab_sharded(forge, "mailstate-apply")
    assert [r.returncode for r in refused.values()].count(1) == 1
    assert any("not the ones that plan was made from" in r.stderr for r in refused.values())


def test_the_gitlab_pipeline_holds_a_merge_request_to_its_account(tmp_path: Path) -> None:
    forge = Forge(tmp_path)
    forge.edit("quota: 10G", "quota: 9G")
    forge.edit("domain: bakkerijpeeters.be", "domain: bakkerijpeeters.be\n",
               "bakkerij/bakkerijpeeters.be.yaml")
    refused = run_gitlab_job(forge, "mailstate-validate")
    assert refused.returncode == 1 and "changes the files of one account" in refused.stderr
    assert run_gitlab_job(forge, "mailstate-validate", GITLAB_USER_LOGIN="alice").returncode == 0


def test_the_pre_commit_hook_runs_validate() -> None:
    [hook] = YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "mailstate-validate" and hook["pass_filenames"] is False
    result = subprocess.run([sys.executable, "-P", "-m", "mailstate", *hook["entry"].split()[1:]],
                            cwd=REPO / "examples" / "repo", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid")
