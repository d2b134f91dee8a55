"""Cross-object rules (policy.py) and the defaults of desired.py, through small repositories
written to a temporary directory and checked with the same `validate.run` the CLI uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstate.config.validation import run

from .samples import HASH

G = 1024**3
CONFIG = """\
servers:
  maximusconfessor: {target: "ssh://root@maximusconfessor.example.net"}
accounts:
  monsite:
    plan: %s
    domains: [monsite.be, monsite.eu, monsite.com, a.be, b.be, c.be, d.be, münchen.de,
              bücher.example]
"""


def box(login: str, quota: str | None = None, extra: str = "") -> str:
    text = f'  {login}:\n    name: Info\n    password: "{HASH}"\n'
    return text + (f"    quota: {quota}\n" if quota else "") + extra


def domain(name: str = "monsite.be", boxes: str | None = None, rest: str = "") -> str:
    boxes = box("monsite") if boxes is None else boxes
    return (f"domain: {name}\naccount: monsite\nserver: maximusconfessor\n{rest}"
            + (f"mailboxes:\n{boxes}" if boxes else ""))


def validate(tmp_path: Path, files: dict[str, str], plan: str = "recommended",
             config_extra: str = ""):
    (tmp_path / "domains").mkdir()
    (tmp_path / "mailstate.yaml").write_text(CONFIG % plan + config_extra)
    for name, text in files.items():
        (tmp_path / "domains" / f"{name}.yaml").write_text(text)
    desired, issues = run([str(tmp_path)])
    errors = [str(i) for i in issues if i.severity == "error"]
    return desired, errors, [str(i) for i in issues if i.severity == "warning"]


def many(n: int, quota: str = "3G") -> str:
    return box("monsite", quota) + "".join(box(f"monsite{i:04d}", quota) for i in range(1, n))


# (name, files, plan, config_extra, expected error fragment or None when valid)
RULES = [
    ("at the mailbox limit", {"a": domain(boxes=many(10))}, "recommended", "", None),
    ("one over the mailbox limit", {"a": domain(boxes=many(11, "1G"))}, "recommended", "",
     "has 11 mailboxes; plan 'recommended' allows 10"),
    ("quota sum exactly the plan", {"a": domain(boxes=many(3, "10G"))}, "recommended", "", None),
    ("quota sum 1M over the plan", {"a": domain(boxes=many(2, "10G") + box("x0003", "10241M"))},
     "recommended", "", "allocates 30721M"),
    ("mailboxes counted over two files", {"a": domain(boxes=box("monsite", "1G")),
     "b": domain("monsite.eu", box("monsite0001", "1G"), "admin: monsite\n")}, "light", "",
     "has 2 mailboxes; plan 'light' allows 1"),
    ("domains counted per account", {"a": domain(), "b": domain("monsite.eu", "",
     "admin: monsite\n")}, "light", "", "has 2 domains; plan 'light' allows 1"),
    ("overridden plan", {"a": domain(boxes=many(2, "1G"))}, "light",
     "plans:\n  light: {mailboxes: 2, mail_quota: 3G, domains: 1}\n", None),
    ("domain alias limit of a custom plan", {"a": domain(rest="domain_aliases: [a.be, b.be]\n")},
     "tiny", "plans:\n  tiny: {mailboxes: 1, mail_quota: 3G, domains: 1, domain_aliases: 1}\n",
     "2 domain aliases; plan 'tiny' allows 1"),
    ("domain aliases unlimited by default", {"a": domain(rest="domain_aliases: [a.be, b.be, "
     "c.be, d.be]\n")}, "light", "", None),
    ("alias to an address through a domain alias", {"a": domain(
     boxes=box("monsite", extra="    addresses: [info]\n"),
     rest="domain_aliases: [monsite.com]\naliases:\n  sales: [info@monsite.com]\n")},
     "light", "", None),
    ("alias to a missing address of another hosted domain", {"a": domain(
     rest="aliases:\n  sales: [jobs@monsite.eu]\n"), "b": domain("monsite.eu", "",
     "admin: monsite\n")}, "recommended", "", "jobs@monsite.eu does not exist"),
    ("chain without a loop", {"a": domain(rest="aliases:\n  a: [b]\n  b: [c]\n  c: [x@gmail.com]"
     "\n")}, "light", "", None),
    ("loop of three", {"a": domain(rest="aliases:\n  a: [b]\n  b: [c]\n  c: [a]\n")}, "light", "",
     "forwarding loop: a@monsite.be -> b@monsite.be -> c@monsite.be -> a@monsite.be"),
    ("forward out and back in", {"a": domain(boxes=box("monsite", extra="    forward: {to: "
     "[x@monsite.eu]}\n"), rest=""), "b": domain("monsite.eu", "", "admin: monsite\naliases:\n"
     "  x: [monsite@monsite.be]\n")}, "recommended", "", "forwarding loop"),
    ("admin in another file of the account", {"a": domain(), "b": domain("monsite.eu", "",
     "admin: monsite\n")}, "recommended", "", None),
    ("catch-all to a missing local address", {"a": domain(rest="catch_all: [nobody@monsite.be]\n")},
     "light", "", "nobody@monsite.be does not exist"),
    ("role alias overridden to a missing address", {"a": domain(rest="role_aliases:\n  abuse: "
     "[nobody]\n")}, "light", "", "nobody@monsite.be does not exist"),
    ("vacation from the domain alias", {"a": domain(boxes=box("monsite", extra=(
     "    vacation: {subject: Away, message: Back soon, from: info@monsite.com}\n")),
     rest="domain_aliases: [monsite.com]\n")}, "light", "", None),
    ("vacation from another domain of the account", {"a": domain(boxes=box("monsite", extra=(
     "    vacation: {subject: Away, message: Back soon, from: info@monsite.eu}\n"))),
     "b": domain("monsite.eu", "", "admin: monsite\n")}, "recommended", "",
     "info@monsite.eu is not an address of this domain"),
    ("quota 1M is allowed", {"a": domain(boxes=box("monsite", "1M"))}, "light", "", None),
]


@pytest.mark.parametrize(("files", "plan", "extra", "fragment"), [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])
def test_rule(tmp_path, files, plan, extra, fragment):
    desired, errors, _ = validate(tmp_path, files, plan, extra)
    if fragment is None:
        assert errors == []
        assert desired is not None
    else:
        assert any(fragment in e for e in errors), errors
        assert desired is None


def test_idn_is_stored_as_a_labels(tmp_path):
    desired, errors, _ = validate(tmp_path, {"a": domain("münchen.de",
                                  rest="domain_aliases: [bücher.example]\n")}, "light")
    assert errors == []
    dom = desired.servers["maximusconfessor"].domains["xn--mnchen-3ya.de"]
    assert dom.domain_aliases == ("xn--bcher-kva.example",)
    assert dom.aliases["postmaster@xn--mnchen-3ya.de"] == ("monsite@xn--mnchen-3ya.de",)


def test_defaults_made_explicit(tmp_path):
    desired, errors, _ = validate(tmp_path, {"a": domain(boxes=box("monsite", extra=(
        "    vacation: {subject: Away, message: Back soon.}\n")), rest="role_aliases:\n  abuse: "
        "[abuse@provider.example]\n")}, "light",
        "defaults:\n  quota: 2G\n  vacation_interval: 15m\n")
    assert errors == []
    dom = desired.servers["maximusconfessor"].domains["monsite.be"]
    mailbox = dom.mailboxes["monsite"]
    assert (mailbox.quota, mailbox.vacation.interval) == (2 * G, 900)
    assert dom.aliases["abuse@monsite.be"] == ("abuse@provider.example",)
    for role in ("hostmaster", "postmaster", "webmaster"):
        assert dom.aliases[f"{role}@monsite.be"] == ("monsite@monsite.be",)


def test_admin_elsewhere_gets_role_aliases(tmp_path):
    desired, errors, _ = validate(tmp_path, {"a": domain(), "b": domain("monsite.eu", "",
                                  "admin: monsite\n")})
    assert errors == []
    eu = desired.servers["maximusconfessor"].domains["monsite.eu"]
    assert eu.aliases["abuse@monsite.eu"] == ("monsite@monsite.be",)


def test_login_convention_is_a_warning(tmp_path):
    desired, errors, warnings = validate(tmp_path, {"a": domain(boxes=box("monsite") +
                                         box("info"))})
    assert errors == [] and desired is not None
    assert any("'info' does not follow the convention monsite0001" in w for w in warnings)


@pytest.mark.parametrize("path", ["examples/repo", "examples/monsite.be.yaml"])
def test_examples_are_valid(path):
    root = Path(__file__).resolve().parents[2]
    desired, issues = run([str(root / path)])
    assert desired is not None and issues == [], issues
