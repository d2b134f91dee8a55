"""What an import writes: ``mailstate.yaml``, the domain files, and what could not be carried.

Warnings about one domain become comments at the top of its file; the others go into
``mailstate.yaml``'s. Nothing is dropped without a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mailstate.importer import yaml_writer as yamlout


@dataclass
class Converted:
    """What an import writes: mailstate.yaml, domain files, and what could not be carried."""

    config: dict[str, object]
    domains: dict[str, dict[str, object]]  # domain -> domain file mapping
    notes: dict[str, list[str]] = field(default_factory=dict)  # domain -> comment lines
    warnings: list[str] = field(default_factory=list)

    def warn(self, domain: str | None, text: str) -> None:
        self.warnings.append(f"{domain}: {text}" if domain else text)
        if domain:
            self.notes.setdefault(domain, []).append(text)




def _comment(lines: list[str]) -> str:
    return "".join(f"# {line}\n" for text in lines for line in text.splitlines())


def write(imported: Converted, out: Path, source: str) -> list[Path]:
    """Write ``out/mailstate.yaml`` and ``out/domains/<domain>.yaml``; returns the paths."""
    (out / "domains").mkdir(parents=True, exist_ok=True)
    general = [w for w in imported.warnings if w.partition(": ")[0] not in imported.domains]
    header = f"Converted by `mailstate import --from virtualmin` from {source}."
    config = dict(imported.config)
    for server in config["servers"].values():  # type: ignore[union-attr]
        homes = server["layout"]["homes"]
        server["layout"]["homes"] = {k: yamlout.Flow(v) for k, v in homes.items()}
    text = _comment([header, *(["Not carried (see the domain files for the rest):", *general]
                               if general else [])]) + yamlout.dump(config)
    (out / "mailstate.yaml").write_text(text)
    written = [out / "mailstate.yaml"]
    for name, data in sorted(imported.domains.items()):
        notes = imported.notes.get(name, [])
        text = _comment([header, *(["Not carried, or changed:", *notes] if notes else [])])
        path = out / "domains" / f"{name}.yaml"
        path.write_text(text + yamlout.dump(data))
        written.append(path)
    return written
