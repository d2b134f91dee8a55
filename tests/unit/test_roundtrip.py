"""parse(render(state)) == state for every valid state, on both Dovecot syntaxes."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstate.files.formats.lines import split_lines
from mailstate.files.parse import parse
from mailstate.files.render import render
from mailstate.model.layout import Facts, Layout
from mailstate.model.state import ServerState

from .strategies import server_states

LAYOUT = Layout()
FACTS = {"2.3": Facts(), "2.4": Facts(dovecot_version="2.4.1", db_type="lmdb")}
SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def files_of(state: ServerState, facts: Facts) -> dict[str, bytes]:
    return {f.path: f.content for f in render(state, LAYOUT, facts).files}


@SLOW
@given(state=server_states(), version=st.sampled_from(sorted(FACTS)))
def test_parse_inverts_render(state: ServerState, version: str) -> None:
    parsed = parse(files_of(state, FACTS[version]), LAYOUT, FACTS[version])
    assert parsed.warnings == []
    assert parsed.state == state


@SLOW
@given(state=server_states())
def test_render_is_deterministic(state: ServerState) -> None:
    again = ServerState.model_validate(state.model_dump())
    assert render(state, LAYOUT, FACTS["2.3"]) == render(again, LAYOUT, FACTS["2.3"])


@settings(max_examples=100, deadline=None)
@given(state=server_states(), seed=st.integers(0, 2**32))
def test_reordered_lines_are_no_change(state: ServerState, seed: int) -> None:
    """Line order is not state: shuffling every line-based file parses to the same state."""
    rng = random.Random(seed)
    shuffled = {}
    for path, content in files_of(state, FACTS["2.3"]).items():
        if path.endswith((".sieve", ".conf", ".txt", ".sh")):  # not line-based files
            shuffled[path] = content
            continue
        head, *body = split_lines(content)
        rng.shuffle(body)
        shuffled[path] = "\n".join([head, *body, ""]).encode()
    parsed = parse(shuffled, LAYOUT, FACTS["2.3"])
    assert parsed.warnings == []
    assert parsed.state == state
