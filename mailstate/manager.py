"""The library's face: a repository's servers validated, planned, applied and rolled back.

Everything a program needs to run mailstate on servers is here (what needs no server is in
``mailstate.offline``); the command line (``mailstate.cli``) only parses options, asks for
confirmation and prints. A run works on all servers of the repository at
once, through a bounded pool of threads (one SSH connection per server, kept open from the read
to the apply so that a plan is applied to exactly what was read). A server that cannot be
reached or fails is recorded with its error and the others carry on.

    from mailstate import Manager

    with Manager("path/to/repo") as manager:
        fleet = manager.plan()                 # every server, in parallel
        print(render_text(fleet.plan))
        fleet = manager.apply(fleet)           # raises nothing: errors are per server
        assert fleet.ok
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from mailstate.engine.prepare import open_transport, prepare_unchanged, target_of
from mailstate.fleet import Fleet, Invalid, SelectionError, ServerRun
from mailstate.guards import plan_cache
from mailstate.guards.checksum import check_saved
from mailstate.guards.safety import LOCK_TIMEOUT, ApplyRefused, annotate_moves, check_safe, unsafe
from mailstate.model.diagnostics import Issue
from mailstate.model.layout import Facts
from mailstate.plan import Plan
from mailstate.schema import Server
from mailstate.server.read import read_snapshot
from mailstate.server.transport import TransportError
from mailstate.views.text import server_summary

if TYPE_CHECKING:
    from mailstate.config.desired import Desired

DEFAULT_PARALLEL = 8
# What a server's failure can look like (the SSH transport turns paramiko's into
# TransportError); anything else is a bug and is not hidden.
FAILURES = (TransportError, ApplyRefused, ValueError, OSError, EOFError)

Progress = Callable[[str, str, str], None]  # (server, step, detail)


def _quiet(server: str, step: str, detail: str) -> None:
    pass


class Manager:
    """A repository (a directory, domain files, or the ``mailstate.yaml`` at the repository root).

    ``targets`` points servers elsewhere than their ``target:`` (``{"gregorius":
    "local:/tmp/g"}``; the key ``""`` means "the only server of the run"). ``progress`` is
    called from worker threads with (server, step, detail) as each server moves on: steps are
    connecting, reading, planned, uploading, activating, checking, swapping, reloading (or
    restoring, for a rollback), done, failed; and "output", once per line a server's script
    printed. ``cache``: plan a server that matches what the same files rendered to last time
    without loading the repository (``plan_cache``; the result is the same). ``settle``:
    complete or undo an activation a killed run left unfinished (its journal) before planning
    (apply does; a plan never writes). ``lock_timeout``: seconds to wait for another apply on
    the same server.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path] = (), *,
                 targets: Mapping[str, str] | None = None, known_hosts: str | None = None,
                 identity: str | None = None, parallel: int = DEFAULT_PARALLEL,
                 progress: Progress | None = None, cache: bool = True, settle: bool = False,
                 lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.paths = [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]
        self.targets = dict(targets or {})
        self.known_hosts = known_hosts
        self.identity = identity
        self.parallel = max(1, parallel)
        self.progress: Progress = progress or _quiet
        self.issues: list[Issue] = []
        self._desired: Desired | None = None
        self._empty: list[str] = []  # configured servers without domain files
        self.cache = cache
        self._record: plan_cache.Record | None = None  # the plan cache's, for these files
        self._kept: dict[str, plan_cache.ServerRecord] = {}  # to record after this run
        self._inputs: tuple[str, str] | None = None  # (record name, inputs) before loading
        self._loading = threading.Lock()  # worker threads may all need the full load
        self.settle = settle
        self.lock_timeout = lock_timeout

    def __enter__(self) -> Manager:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    # ------------------------------------------------------------ the repository

    def check(self) -> list[Issue]:
        """Validate, or recall the result of exactly these files (``plan_cache``); raises
        ``Invalid``. Returns the warnings, also left in ``issues``."""
        if self._desired is None and self._record is None and self.cache:
            self._record = plan_cache.load(self.paths)
            if self._record is not None:
                self.issues = list(self._record.issues)
                return self.issues
        self.validate()
        return self.issues

    def validate(self) -> Desired:
        """Load and check every file; raises ``Invalid``. Warnings are left in ``issues``."""
        with self._loading:
            if self._desired is None:
                from mailstate.config.desired import server_state
                from mailstate.config.validation import run

                inputs = self._digest() if self.cache else None
                desired, self.issues = run(self.paths, cache=self.cache)
                if desired is None:
                    raise Invalid(self.issues)
                # A configured server whose last domain file was deleted is still planned (to
                # no domains), so that its domains are not left active without a word.
                self._empty = sorted(set(desired.repo.config.servers) - set(desired.servers))
                for name in self._empty:
                    desired.servers[name] = server_state(desired.server_config(name), {})
                # recorded only if no file changed while it was being loaded
                self._inputs = inputs if inputs and inputs == self._digest(desired) else None
                desired.release_files()  # checked: planning needs the resolved domains only
                self._desired = desired
            return self._desired

    def _digest(self, desired: Desired | None = None) -> tuple[str, str] | None:
        """(record name, domain files' digest) of the files as they are now on disk."""
        named = plan_cache.record_name(self.paths)
        if named is None:
            return None
        name, config = named
        if desired is not None:
            domains = _domains_folder(desired)
        elif config is not None:
            from mailstate.config.repository import load_config

            domains = load_config(config, []).domains
        else:
            domains = None
        return name, plan_cache.inputs_digest(config, domains, self.paths)

    @property
    def loaded(self) -> bool:
        """Whether the repository was loaded (not only recalled from the plan cache)."""
        return self._desired is not None

    @property
    def desired(self) -> Desired:
        return self.validate()

    def _servers(self) -> tuple[list[str], list[str]]:
        """(the servers of this run, every server of the repository)."""
        if self._desired is None and self._record is not None:
            return list(self._record.run_servers), list(self._record.known_servers)
        desired = self.desired
        selected = desired.repo.selected
        used = {i.server for i in desired.inputs if i.spec.domain in selected}
        if selected == {spec.domain for _, spec in desired.repo.domains}:  # the whole repository
            used |= set(self._empty)
        return sorted(used), sorted(desired.servers)

    def server_names(self, only: Iterable[str] | None = None) -> list[str]:
        """The servers a run works on: those of the selected domain files, narrowed to `only`."""
        servers, known = self._servers()
        if only:
            wanted = list(dict.fromkeys(only))
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise SelectionError(f"no server {', '.join(map(repr, unknown))} in this "
                                 f"repository (known: {', '.join(known) or 'none'})")
            servers = [n for n in servers if n in wanted] or sorted(wanted)
        # --target (MAILSTATE_TARGET) may name every server of the fleet while a run works
        # on some: a CI job sets the targets once and narrows per job. A name the
        # repository does not know is still a mistake.
        strangers = [n for n in self.targets if n and n not in known]
        if strangers:
            raise SelectionError(f"--target names server {', '.join(map(repr, strangers))}, "
                                 f"which is not in this repository (known: "
                                 f"{', '.join(known) or 'none'})")
        if "" in self.targets and len(servers) > 1:
            raise SelectionError(f"a --target without NAME= is for one server, but this run has "
                             f"{len(servers)}: {', '.join(servers)}; write --target NAME=TARGET")
        return servers

    def target(self, server: str) -> str:
        override = self.targets.get(server) or self.targets.get("")
        if self._desired is None and self._record is not None:
            recorded = override or self._record.targets.get(server)
            if recorded:
                return recorded
        return target_of(self.desired, server, override)

    def _settings(self, server: str) -> tuple[Server, Path, str | None]:
        """A server's settings, its repository's folder and ssh_config (from the record, if
        the repository was not loaded)."""
        if self._desired is None and self._record is not None:
            record = self._record
            config = Server.model_validate(record.configs.get(server, {}))
            return config, Path(record.root), record.ssh_config
        desired = self.desired
        return (desired.server_config(server), desired.repo.root,
                desired.repo.config.ssh_config)

    def _record_run(self, fleet: Fleet) -> None:
        """Keep what this run rendered for the next plan of the same files (plan_cache)."""
        desired, inputs = self._desired, self._inputs
        if not self.cache or desired is None or inputs is None or not self._kept:
            return
        old = self._record.servers if self._record is not None else {}
        targets: dict[str, str | None] = {}
        for name in desired.servers:
            try:
                targets[name] = target_of(desired, name, None)
            except TransportError:
                targets[name] = None
        run_servers, known = self._servers()
        plan_cache.save(plan_cache.Record(
            inputs[0], inputs[1], _domains_folder(desired),
            self.issues, run_servers, known, targets,
            {n: desired.server_config(n).model_dump(mode="json") for n in known},
            str(desired.repo.root), desired.repo.config.ssh_config, {**old, **self._kept}))

    # ------------------------------------------------------------ running servers

    def _each(self, runs: list[ServerRun], work: Callable[[ServerRun], None]) -> None:
        """`work` on every run through the pool; a server's failure is kept on its run."""

        def one(run: ServerRun) -> None:
            start = time.monotonic()
            try:
                work(run)
            except FAILURES as exc:
                run.error = _message(run.name, exc)
                self.progress(run.name, "failed", run.error)
            finally:
                run.seconds += time.monotonic() - start

        if self.parallel == 1 or len(runs) <= 1:
            for run in runs:
                one(run)
            return
        pool = ThreadPoolExecutor(max_workers=min(self.parallel, len(runs)),
                                  thread_name_prefix="mailstate")
        try:
            for future in [pool.submit(one, run) for run in runs]:
                future.result()
        finally:
            # On Ctrl-C: servers already at work finish (an activation is not cut in half),
            # servers not yet started are not started.
            pool.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, run: ServerRun) -> None:
        config, root, ssh_config = self._settings(run.name)
        target = self.target(run.name)
        self.progress(run.name, "connecting", target)
        transport = open_transport(target, config, root, self.known_hosts, self.identity,
                                   ssh_config=ssh_config)
        try:
            self.progress(run.name, "reading", "")
            kept = self._record.servers.get(run.name) if self._record is not None else None
            snapshot = read_snapshot(transport, config.layout, Facts(),
                                     expect=kept.hashes if kept is not None else None)
            if kept is not None:
                run.prepared = prepare_unchanged(kept, run.name, config, transport, snapshot)
            if run.prepared is None and snapshot.matched:
                # the files are as recorded but something else is not (main.cf, the facts, an
                # unfinished apply): the full plan needs the files after all
                snapshot = read_snapshot(transport, config.layout, Facts())
            if run.prepared is None:
                from mailstate.engine.prepare import prepare, record_of

                intent = self.desired.intent(run.name)
                run.prepared = prepare(intent, transport, snapshot)
                self._kept[run.name] = record_of(intent, run.prepared)
            if self.settle and run.prepared.snapshot.journal:
                from mailstate.apply import settle

                run.prepared, settled = settle(self.desired, run.prepared, self.lock_timeout)
                for line in settled:
                    self.progress(run.name, "output", line)
        except BaseException:
            transport.close()
            raise

    def plan(self, servers: Iterable[str] | None = None) -> Fleet:
        """Read and plan the servers (all of the run, or `servers`), in parallel."""
        fleet = Fleet([ServerRun(name) for name in self.server_names(servers)])

        def work(run: ServerRun) -> None:
            self._prepare(run)
            assert run.prepared is not None
            plan = run.prepared.plan
            self.progress(run.name, "planned", server_summary(plan))

        self._each(fleet.servers, work)
        annotate_moves(fleet.plan)
        for run in fleet.servers:
            if run.prepared is not None:
                reason = unsafe(run.prepared.plan, run.prepared.config.max_safe_delete)
                if reason:
                    run.prepared.plan.warnings.append(f"apply refuses this without --force: "
                                                      f"{reason}")
        self._record_run(fleet)
        return fleet

    def apply(self, fleet: Fleet | None = None, *, force: bool = False,
              saved: Plan | None = None) -> Fleet:
        """Apply a planned fleet (planned now if not given); errors are kept per server.

        A server is refused (and the others go on) when its saved plan is stale, its managed
        files were edited by hand, or the plan removes more than its safe share, unless
        `force`. The connections stay open: close the fleet when done.
        """
        from mailstate.apply import apply_server, nothing_to_apply

        fleet = fleet or self.plan()
        saved_by = {s.server: s for s in saved.servers} if saved is not None else None

        def work(run: ServerRun) -> None:
            prep = run.prepared
            if prep is None:
                return
            if saved_by is not None:
                check_saved(saved_by.get(run.name), prep.plan)
            if not prep.plan.has_changes:
                run.applied = nothing_to_apply(prep.plan)
                self._output(run)
                self.progress(run.name, "done", "no changes")
                return
            if not force:
                check_safe(prep.plan, prep.config.max_safe_delete)
            run.applied = apply_server(prep, self.desired.servers[run.name], force=force,
                                       step=self._step(run.name),
                                       lock_timeout=self.lock_timeout)
            self._output(run)
            self.progress(run.name, "done", server_summary(prep.plan))

        self._each([s for s in fleet.servers if s.ok], work)
        return fleet

    def _step(self, server: str) -> Callable[[str], None]:
        return lambda step: self.progress(server, step, "")

    def _output(self, run: ServerRun) -> None:
        for line in run.applied.output if run.applied else []:
            self.progress(run.name, "output", line)

    def rollback(self, fleet: Fleet, generation: str | None = None) -> Fleet:
        """Put back the files a generation kept (default: the newest) on each read server."""
        from mailstate.apply import rollback_server

        def work(run: ServerRun) -> None:
            if run.prepared is None:
                return
            run.applied = rollback_server(run.prepared, generation, step=self._step(run.name),
                                          lock_timeout=self.lock_timeout)
            self._output(run)
            self.progress(run.name, "done", "rolled back")

        self._each([s for s in fleet.servers if s.ok], work)
        return fleet

    def unlock(self, fleet: Fleet) -> dict[str, list[str]]:
        """Release each read server's lock record left by a run that is gone; what was done
        per server. A lock a running apply holds is refused: that server's error."""
        from mailstate.apply import unlock_server

        done: dict[str, list[str]] = {}

        def work(run: ServerRun) -> None:
            if run.prepared is not None:
                done[run.name] = unlock_server(run.prepared)

        self._each([s for s in fleet.servers if s.ok], work)
        return {name: done[name] for name in sorted(done)}

    @staticmethod
    def generations(fleet: Fleet) -> dict[str, list[str]]:
        """Per read server, the generations it keeps (oldest first), for ``rollback``."""
        return {run.name: list(run.prepared.snapshot.generations) for run in fleet.servers
                if run.prepared is not None}

    @staticmethod
    def describe_generations(fleet: Fleet) -> dict[str, list[str]]:
        """Per read server, one line per generation kept: its date and whether it is live."""
        from mailstate.engine.generations import describe
        from mailstate.engine.prepare import live_generation

        return {run.name: describe(run.prepared.snapshot.generations,
                                   live_generation(run.prepared))
                for run in fleet.servers if run.prepared is not None}


def _domains_folder(desired: Desired) -> str | None:
    """mailstate.yaml's `domains:` folder, which the plan cache hashes (None: no config)."""
    return desired.repo.config.domains if desired.repo.config_doc else None


def _message(server: str, exc: BaseException) -> str:
    """The error as one line or paragraph that starts with the server's name."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (OSError, EOFError)):
        text = f"{type(exc).__name__}: {text}"
    return text if text.startswith(f"{server}:") else f"{server}: {text}"
