"""One `mailstate apply` (or plan), done step by step with a clock: where the time goes.

    python3 bench/steps.py apply|plan PATH

Does what `mailstate apply PATH --auto-approve` does, through the same library calls, and
prints one JSON object: seconds per step (imports, validate, connect, read, render and
compare, the plan's text, building the upload, upload, activate) and, for apply, the server
side's own steps as `server-activate.sh` times them (checks, swap, postconf, each reload, the
probe, welcome mails): it sets MAILSTATE_TIMES=1, which the transports pass on to the server.
Run by bench/bench.py in a fresh process.
"""

from __future__ import annotations

import json
import os
import sys
import time

from mailstate.views.text import render_text

START = time.perf_counter()


def server_times(stderr: bytes) -> dict[str, float]:
    """Seconds per step of the activation: its "mailstate-time STEP MS" lines (a step that
    repeats, such as a reload after a restore, is summed)."""
    steps: dict[str, float] = {}
    for line in stderr.decode("utf-8", "replace").splitlines():
        tag, _, rest = line.partition(" ")
        name, _, ms = rest.rpartition(" ")
        if tag == "mailstate-time" and name and ms.isdigit():
            steps[name] = round(steps.get(name, 0) + int(ms) / 1000, 3)
    return steps


def main() -> None:
    verb, path = sys.argv[1], sys.argv[2]
    os.environ["MAILSTATE_TIMES"] = "1"
    times: dict[str, float] = {}
    clock = [START]

    def lap(name: str) -> None:
        now = time.perf_counter()
        times[name] = round(now - clock[0], 4)
        clock[0] = now

    from mailstate.apply import apply_server
    from mailstate.config.validation import run
    from mailstate.engine.prepare import open_transport, prepare, target_of
    from mailstate.plan import Plan

    lap("imports")
    desired, issues = run([path])
    if desired is None:
        sys.exit("\n".join(map(str, issues)))
    lap("validate")
    server = next(iter(desired.servers))
    config = desired.server_config(server)
    transport = open_transport(target_of(desired, server, None), config, desired.repo.root)
    lap("connect")
    original = transport.run
    round_trips: list[float] = []
    stderrs: list[bytes] = []

    def timed_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        begin = time.perf_counter()
        result = original(*args, **kwargs)
        round_trips.append(time.perf_counter() - begin)
        stderrs.append(result.stderr)
        return result

    transport.run = timed_run  # type: ignore[method-assign]
    prepared = prepare(desired.intent(server), transport)
    read = round_trips.pop()
    lap("read+render+compare")
    times["read (round trip)"] = round(read, 4)
    times["render+compare"] = round(times.pop("read+render+compare") - read, 4)
    text = render_text(Plan([prepared.plan]))
    lap("plan text")
    server_steps: dict[str, float] = {}
    upload = 0
    if verb == "apply" and prepared.plan.has_changes:
        # build, upload and activation are one call (one round trip); its progress steps
        # split it: "uploading" once the stage is built, "activating" once it is unpacked
        def step(name: str) -> None:
            if name in ("uploading", "activating"):
                lap({"uploading": "build stage", "activating": "upload+unpack"}[name])

        applied = apply_server(prepared, desired.servers[server], step=step)
        lap("activate")
        upload = len(applied.output)
        server_steps = server_times(stderrs[-1])
    transport.close()
    lap("close")
    times["total"] = round(time.perf_counter() - START, 4)
    print(json.dumps({"times": times, "server": server_steps,
                      "changes": len(prepared.plan.changes), "files": len(prepared.plan.files),
                      "output_lines": upload,
                      "plan_lines": text.count("\n")}))


if __name__ == "__main__":
    main()
