"""A local target to plan and apply against: a temporary directory standing for a server's root.

The fixture ``server`` gives a ``LocalServer``: where domain files are written, the directory
used as the server root (``local:DIR``), and helpers to run the CLI in-process, to go through
the library (``mailstate.Manager``), and to take a picture of what is on disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailstate import Invalid, Manager
from mailstate.apply import Applied
from mailstate.cli import main
from mailstate.config.desired import Desired
from mailstate.engine.prepare import Prepared

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "monsite.be.yaml"
STATE_DIR = "var/lib/mailstate"


LIVE = ("var", "lib", "mailstate", "live")  # the live generations the managed paths link to


def _our_link(path: Path) -> bool:
    """mailstate's link at a managed path (relative, into the live generation)."""
    return "/live/current/files/" in os.readlink(path)


@dataclass(frozen=True)
class FileInfo:
    content: bytes
    inode: int
    mtime_ns: int


@dataclass
class LocalServer:
    root: Path  # the server's root directory (the target is local:ROOT)
    work: Path  # where the test keeps its domain files

    @property
    def target(self) -> str:
        return f"local:{self.root}"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    # ------------------------------------------------------------ inputs

    def domain(self, text: str, name: str = "monsite.be.yaml") -> Path:
        """Write (or overwrite) a domain file used on its own."""
        path = self.work / name
        path.write_text(text)
        return path

    def example(self) -> Path:
        return self.domain(EXAMPLE.read_text())

    # ------------------------------------------------------------ running

    def cli(self, *args: str, target: bool = True, input: str | None = None) -> Result:
        """`mailstate ARGS --target local:ROOT`, in-process; stdin is not a terminal."""
        extra = ["--target", self.target] if target else []
        return CliRunner().invoke(main, [*args, *extra], input=input, catch_exceptions=False)

    def manager(self, *paths: Path) -> Manager:
        """The library's Manager for these files, every server pointed at the local root."""
        manager = Manager([str(p) for p in paths])
        try:
            servers = manager.desired.servers
        except Invalid as exc:
            raise AssertionError([str(i) for i in exc.issues]) from None
        manager.targets = {name: self.target for name in servers}
        return manager

    def prepare(self, *paths: Path) -> tuple[Desired, list[Prepared]]:
        """Read, parse, render and compare every server of the files, through the library."""
        manager = self.manager(*paths)
        fleet = manager.plan()
        assert fleet.ok, fleet.errors
        return manager.desired, [s.prepared for s in fleet.servers if s.prepared]

    def apply(self, *paths: Path, force: bool = False) -> list[Applied]:
        manager = self.manager(*paths)
        with manager.apply(force=force) as fleet:
            assert fleet.ok, fleet.errors
            return [s.applied for s in fleet.servers if s.applied]

    # ------------------------------------------------------------ what is on disk

    def tree(self) -> dict[str, FileInfo]:
        """Every file under the root as the daemons see it: content, inode and mtime. The
        managed paths are mailstate's links into the live generation (read through them); the
        generations themselves (var/lib/mailstate/live) and any other link are left out."""
        out: dict[str, FileInfo] = {}
        for dirpath, _, names in os.walk(self.root):
            if Path(dirpath).relative_to(self.root).parts[:4] == LIVE:
                continue
            for name in names:
                path = Path(dirpath) / name
                if path.is_symlink() and not _our_link(path):
                    continue
                if not path.is_file():
                    continue
                st = path.stat()
                out[str(path.relative_to(self.root))] = FileInfo(path.read_bytes(), st.st_ino,
                                                                 st.st_mtime_ns)
        return out

    def contents(self) -> dict[str, bytes]:
        return {p: f.content for p, f in self.tree().items()}

    def read(self, path: str) -> str:
        return (self.root / path.lstrip("/")).read_text()

    def generations(self) -> list[str]:
        gens = self.state_dir / "generations"
        return sorted(p.name for p in gens.iterdir()) if gens.is_dir() else []


@pytest.fixture
def server(tmp_path: Path) -> LocalServer:
    work = tmp_path / "repo"
    work.mkdir()
    return LocalServer(tmp_path / "server", work)
