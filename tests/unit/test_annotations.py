"""`validate --format github|plain`: one line per problem that no file content can forge."""

from __future__ import annotations

from mailstate.cli.annotations import github, plain
from mailstate.config.yaml_reader import Issue


def test_github_workflow_commands_escape_the_customer_text() -> None:
    issue = Issue("domains/a,b:c.yaml", 3, 7, "bad 100% value\n::error::forged\r")
    assert github(issue) == ("::error file=domains/a%2Cb%3Ac.yaml,line=3,col=7,"
                             "title=mailstate error::bad 100%25 value%0A::error::forged%0D")
    assert github(Issue("f.yaml", None, None, "x", "warning")) == \
        "::warning file=f.yaml,title=mailstate warning::x"


def test_plain_is_file_line_col_on_one_line() -> None:
    assert plain(Issue("f.yaml", 3, 7, "two\nlines")) == "f.yaml:3:7: error: two\\nlines"
