"""`mailstate completion bash|zsh|fish` prints a script that completes the verbs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mailstate.cli import main


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_script_names_the_completion_variable(shell: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0 and "_MAILSTATE_COMPLETE" in result.stdout


def test_bash_completion_completes_verbs() -> None:
    env = {**os.environ, "COMP_WORDS": "mailstate pl", "COMP_CWORD": "1",
           "_MAILSTATE_COMPLETE": "bash_complete"}
    done = subprocess.run([sys.executable, "-P", "-c", "from mailstate.cli import main; "
                           "main(prog_name='mailstate')"], env=env, capture_output=True,
                          text=True, check=False)
    assert "plain,plan" in done.stdout.splitlines()
