"""The CI recipes in examples/ci/ run: their shell steps, against examples/repo, on local targets.

Each recipe is read as the forge reads it; every `run:` (GitHub) or `script:` (GitLab) step
runs with bash in a copy of examples/repo, with the servers as local directories
(``MAILSTATE_TARGET="maximusconfessor=local:DIR/mx gregorius=local:DIR/gr"``), the forge's
API answered by the stand-ins in ``fakes/`` (``gh`` and ``curl``, with the real jq), and the
forge's expressions filled in. Only the install step is skipped (the package under test is
already installed). A pull request is planned twice (one comment, updated in place), merged
and applied with the reviewed checksum; then a change pushed after the review is refused.
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
USES = {"actions/checkout@v4", "actions/setup-python@v5", "actions/upload-artifact@v4"}
CHECKSUM = re.compile(r"ms1:[0-9a-f]{8}:[0-9a-f]{32}")

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is needed by fake gh")


def load(name: str) -> Any:
    return YAML(typ="safe").load((CI / name).read_text())


class Forge:
    """A checkout of examples/repo, local servers, and the fake forge's state."""

    def __init__(self, tmp: Path) -> None:
        self.repo = tmp / "repo"
        shutil.copytree(REPO / "examples" / "repo", self.repo)
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

    def save(self, data: dict[str, Any]) -> None:
        self.state.write_text(json.dumps(data))

    def load(self) -> dict[str, Any]:
        return json.loads(self.state.read_text())

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{os.environ['PATH']}", "HOME": str(self.home),
                "FAKE_FORGE_STATE": str(self.state), "LANG": "C.UTF-8",
                "MAILSTATE_TARGET": " ".join(f"{name}=local:{self.servers}/{name}"
                                             for name in ("maximusconfessor", "gregorius"))}

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


# ---------------------------------------------------------------- GitHub Actions

EXPRESSIONS = {
    "secrets.MAILSTATE_READ_ONLY_KEY": "", "secrets.MAILSTATE_APPLY_KEY": "",
    "github.token": "test-token", "github.repository": "provider/mail",
    "github.event.pull_request.number": "42", "github.event.pull_request.head.sha": SHA,
    "github.server_url": "https://github.example", "github.run_id": "99", "github.sha": SHA,
}


def fill(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in EXPRESSIONS, f"the test does not know ${{{{ {expression} }}}}"
        return EXPRESSIONS[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(text))


def run_github_job(forge: Forge, name: str) -> subprocess.CompletedProcess[str]:
    workflow = load("github-actions.yml")
    job = workflow["jobs"][name]
    env = {**forge.env(), **{k: fill(v) for k, v in workflow.get("env", {}).items()}}
    github_env = forge.repo.parent / "github_env"
    github_env.write_text("")
    env["GITHUB_ENV"] = str(github_env)
    result = subprocess.CompletedProcess([], 0, "", "")
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"] in USES, step["uses"]
            if step["uses"].startswith("actions/upload-artifact"):
                for path in step["with"]["path"].split():
                    assert (forge.repo / path).is_file(), f"artefact {path} was not made"
            continue
        if step["name"] in SKIPPED:
            continue
        step_env = {**env, **{k: fill(v) for k, v in step.get("env", {}).items()}}
        result = forge.bash(fill(step["run"]), step_env)
        if result.returncode != 0:
            return result
        for line in github_env.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
    return result


def test_the_github_workflow_plans_comments_once_and_applies_what_was_reviewed(
        tmp_path: Path) -> None:
    workflow = load("github-actions.yml")
    assert {s.get("name") for j in workflow["jobs"].values() for s in j["steps"]} >= SKIPPED
    forge = Forge(tmp_path)

    first = run_github_job(forge, "plan")
    assert first.returncode == 0, first.stderr + first.stdout
    forge.edit("quota: 10G", "quota: 9G")  # a second push to the same pull request
    second = run_github_job(forge, "plan")
    assert second.returncode == 0, second.stderr
    [comment] = forge.load()["comments"]  # posted once, then updated in place
    assert comment["body"].startswith(MARKER + "\n### mailstate plan: ")
    assert "<details><summary><code>monsite.be</code> on maximusconfessor" in comment["body"]
    assert [m for m, _ in forge.load()["log"] if m != "GET"] == ["POST", "PATCH"]
    reviewed = CHECKSUM.search(comment["body"]).group(0)  # type: ignore[union-attr]
    assert reviewed in (forge.repo / "plan.txt").read_text()

    state = forge.load()
    state["pulls"][SHA] = [{"number": 42}]
    forge.save(state)
    applied = run_github_job(forge, "apply")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "Apply complete." in applied.stdout
    assert (forge.servers / "maximusconfessor" / "etc/dovecot/mailstate/passwd").is_file()

    # a pull request whose last push was not planned: the merge refuses
    forge.edit("quota: 9G", "quota: 8G")
    assert run_github_job(forge, "plan").returncode == 0
    forge.edit("quota: 8G", "quota: 7G")
    refused = run_github_job(forge, "apply")
    assert refused.returncode == 1
    assert "not the ones that plan was made from" in refused.stderr
    # a push with changes but no pull request is refused too
    forge.save({**forge.load(), "pulls": {}})
    unreviewed = run_github_job(forge, "apply")
    assert unreviewed.returncode == 1 and "without a reviewed plan" in unreviewed.stderr


def test_validate_annotates_the_pull_request(tmp_path: Path) -> None:
    forge = Forge(tmp_path)
    forge.edit("domain: monsite.be", "domain: monsite.be\nbogus: 1")
    result = run_github_job(forge, "plan")
    assert result.returncode == 1
    assert result.stdout.startswith("::error file=domains/monsite/monsite.be.yaml,line=")
    assert "title=mailstate error::unknown key 'bogus'" in result.stdout
    assert forge.load()["comments"] == []


# ---------------------------------------------------------------- GitLab CI

def run_gitlab_job(forge: Forge, name: str, **variables: str) -> subprocess.CompletedProcess[str]:
    pipeline = load("gitlab-ci.yml")
    job = pipeline[name]
    assert all("pip install" in line or "apt-get" in line
               for line in pipeline["default"]["before_script"])  # the install, skipped
    env = {**forge.env(), **{k: str(v) for k, v in pipeline["variables"].items()},
           "CI_API_V4_URL": "https://gitlab.example/api/v4", "CI_PROJECT_ID": "9",
           "CI_MERGE_REQUEST_IID": "42", "CI_JOB_URL": "https://gitlab.example/job/1",
           "CI_COMMIT_SHA": SHA, "MAILSTATE_GITLAB_TOKEN": "test-token",
           "MAILSTATE_READ_ONLY_KEY": "", "MAILSTATE_APPLY_KEY": "", **variables}
    result = forge.bash("\n".join(job["script"]), env)
    if result.returncode == 0:
        for path in job.get("artifacts", {}).get("paths", []):
            assert (forge.repo / path).is_file(), f"artefact {path} was not made"
    return result


def test_the_gitlab_pipeline_plans_notes_once_and_applies_what_was_reviewed(
        tmp_path: Path) -> None:
    forge = Forge(tmp_path)
    assert run_gitlab_job(forge, "mailstate-validate").returncode == 0
    for _ in range(2):
        result = run_gitlab_job(forge, "mailstate-plan")
        assert result.returncode == 0, result.stderr + result.stdout
    [note] = forge.load()["notes"]
    assert note["body"].startswith(MARKER + "\n### mailstate plan: ")
    state = forge.load()
    state["mrs"][SHA] = [{"iid": 42}]
    forge.save(state)
    applied = run_gitlab_job(forge, "mailstate-apply")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "Apply complete." in applied.stdout

    forge.edit("quota: 10G", "quota: 9G")
    assert run_gitlab_job(forge, "mailstate-plan").returncode == 0
    forge.edit("quota: 9G", "quota: 8G")
    refused = run_gitlab_job(forge, "mailstate-apply")
    assert refused.returncode == 1 and "not the ones that plan was made from" in refused.stderr


def test_the_pre_commit_hook_runs_validate() -> None:
    [hook] = YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "mailstate-validate" and hook["pass_filenames"] is False
    result = subprocess.run([sys.executable, "-P", "-m", "mailstate", *hook["entry"].split()[1:]],
                            cwd=REPO / "examples" / "repo", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid")
