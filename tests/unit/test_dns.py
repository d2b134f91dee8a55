"""`mailstate dns` without DNS: the records of the example repository, each format read back
by a real parser (dnspython's zone reader, a YAML reader), and the clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from mailstate.cli import main
from mailstate.dns.formats import render_octodns, render_zone
from mailstate.dns.records import Record
from tests.unit.conftest import REPO

EXAMPLE_REPO = REPO / "examples" / "repo"
HOST = "maximusconfessor.all2all.org"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(EXAMPLE_REPO, copy)
    monkeypatch.chdir(copy)
    return copy


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["dns", *args])
    return result.exit_code, result.stdout, result.stderr


def records(*args: str) -> list[dict[str, object]]:
    code, out, err = run("--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_each_domain_and_alias_gets_mx_spf_dmarc_and_srv(repo: Path) -> None:
    got = {(r["name"], r["type"], r["value"]) for r in records("--domain", "monsite.be",
                                                              "--domain", "monsite.com")}
    for zone in ("monsite.be", "monsite.com"):  # monsite.com is monsite.be's domain alias
        assert {
            (zone, "MX", f"10 {HOST}"),
            (zone, "TXT", "v=spf1 mx -all"),
            (f"_dmarc.{zone}", "TXT", "v=DMARC1; p=none; rua=mailto:dmarc@all2all.org"),
            (f"_imaps._tcp.{zone}", "SRV", f"0 1 993 {HOST}"),
            (f"_pop3s._tcp.{zone}", "SRV", f"0 1 995 {HOST}"),
        } <= got
    assert len(got) == 10
    # each server's domains point at that server's host name
    other = records("--domain", "bakkerijpeeters.be")
    assert {r["value"] for r in other if r["type"] == "MX"} == {"10 gregorius.all2all.org"}


def test_the_zone_format_is_what_a_zone_reader_loads(repo: Path) -> None:
    code, out, _ = run("--domain", "monsite.be")
    assert code == 0
    text = ("$ORIGIN monsite.be.\n@ 300 IN SOA ns.example. h.example. 1 2 3 4 5\n"
            "@ 300 IN NS ns.example.\n" + out)
    zone = dns.zone.from_text(text, "monsite.be.", relativize=False)
    mx = zone.find_rdataset("monsite.be.", dns.rdatatype.MX)
    assert [str(r.exchange) for r in mx] == [f"{HOST}."] and mx.ttl == 3600
    (dmarc,) = zone.find_rdataset("_dmarc.monsite.be.", dns.rdatatype.TXT)
    assert b"".join(dmarc.strings) == b"v=DMARC1; p=none; rua=mailto:dmarc@all2all.org"
    (srv,) = zone.find_rdataset("_imaps._tcp.monsite.be.", dns.rdatatype.SRV)
    assert (srv.port, str(srv.target)) == (993, f"{HOST}.")


def test_a_long_txt_value_is_cut_into_255_character_strings() -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 400
    text = render_zone([Record("x.be", "s._domainkey.x.be", "TXT", value, 60, "")])
    zone = dns.zone.from_text("@ 60 IN SOA a. b. 1 2 3 4 5\n@ 60 IN NS a.\n" + text, "x.be.",
                              relativize=False)
    (txt,) = zone.find_rdataset("s._domainkey.x.be.", dns.rdatatype.TXT)
    assert [len(s) for s in txt.strings] == [255, len(value) - 255]
    assert b"".join(txt.strings).decode() == value


def test_octodns_yaml_has_relative_names_and_escaped_semicolons(repo: Path) -> None:
    code, out, _ = run("--domain", "monsite.be", "--domain", "monsite.eu", "--format", "octodns")
    assert code == 0
    assert out.startswith("# monsite.be.yaml\n---\n") and "\n# monsite.eu.yaml\n---\n" in out
    first = YAML(typ="safe", pure=True).load(out.split("# monsite.eu.yaml")[0])
    assert first[""] == [
        {"type": "MX", "ttl": 3600, "values": [{"exchange": f"{HOST}.", "preference": 10}]},
        {"type": "TXT", "ttl": 3600, "values": ["v=spf1 mx -all"]}]
    assert first["_dmarc"][0]["values"] == [
        "v=DMARC1\\; p=none\\; rua=mailto:dmarc@all2all.org"]
    assert first["_imaps._tcp"][0]["values"] == [
        {"port": 993, "priority": 0, "target": f"{HOST}.", "weight": 1}]


def test_out_writes_one_octodns_file_per_zone(repo: Path, tmp_path: Path) -> None:
    code, _, err = run("--format", "octodns", "--out", str(tmp_path / "zones"))
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "zones").iterdir())
    assert names == ["artstudio-events.be.yaml", "artstudio.be.yaml", "bakkerijpeeters.be.yaml",
                     "monsite.be.yaml", "monsite.com.yaml", "monsite.eu.yaml"]
    data = YAML(typ="safe", pure=True).load((tmp_path / "zones" / "monsite.com.yaml").read_text())
    assert data[""][0]["values"][0]["exchange"] == f"{HOST}."


def test_render_is_empty_for_no_records() -> None:
    assert render_zone([]) == "" and render_octodns([]) == ""


def _edit(repo: Path, old: str, new: str) -> None:
    path = repo / "mailstate.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_server_without_a_mail_host_name_is_a_clear_error(repo: Path) -> None:
    _edit(repo, "ssh://root@maximusconfessor.all2all.org", "ssh://root@192.0.2.7")
    code, out, err = run()
    assert code == 1 and out == ""
    assert "server 'maximusconfessor' has no mail host name: add `mail_host:" in err
    assert "Traceback" not in err
    _edit(repo, "ssh://root@192.0.2.7", "ssh://root@192.0.2.7\n    mail_host: mx.all2all.org")
    assert {r["value"] for r in records("--domain", "monsite.be") if r["type"] == "MX"} == {
        "10 mx.all2all.org"}


@pytest.mark.parametrize(("old", "new", "message"), [
    ("policy: none", "policy: nothing", "dns.dmarc.policy"),
    ("report_to: dmarc@all2all.org", "report_to: not an address", "dns.dmarc.report_to"),
    ("    greylisting:                                 # manual",
     "    dns: {services: [imaps, gopher]}\n    greylisting:  # manual", "services"),
    ("    greylisting:                                 # manual",
     "    mail_host: 'mx..bad'\n    greylisting:  # manual", "mail_host"),
])
def test_bad_dns_settings_are_refused_with_their_line(repo: Path, old: str, new: str,
                                                      message: str) -> None:
    _edit(repo, old, new)
    code, out, err = run()
    assert code == 1 and out == ""
    assert "mailstate.yaml:" in err and message in err and "Traceback" not in err


@pytest.mark.parametrize("args", [
    ["--resolver", "ns.example"], ["--resolver", "10.0.0.1:99999"],
    ["--resolver", "10.0.0.1"],  # without --check
    ["--out", "somewhere"],  # without --format octodns
    ["--domain", "gmail.com"],
])
def test_bad_options_are_a_clear_error(repo: Path, args: list[str]) -> None:
    extra = ["--check"] if args[0] == "--resolver" and args[1] != "10.0.0.1" else []
    code, out, err = run(*extra, *args)
    assert code == 1 and out == "" and "error: " in err and "Traceback" not in err
    assert not (repo / "somewhere").exists()


def test_octodns_itself_loads_the_files(repo: Path, tmp_path: Path) -> None:
    from octodns.provider.yaml import YamlProvider
    from octodns.zone import Zone

    code, _, err = run("--format", "octodns", "--out", str(tmp_path / "zones"))
    assert code == 0, err
    provider = YamlProvider("mailstate", str(tmp_path / "zones"), enforce_order=False,
                            escaped_semicolons=True)
    zone = Zone("monsite.com.", [])
    provider.populate(zone)
    def text(value: object) -> str:  # MX and SRV values are objects, TXT values strings
        return str(value) if isinstance(value, str) else value.to_rdata_text()  # type: ignore

    got = {(r.name, r._type, r.ttl, tuple(text(v) for v in r.values)) for r in zone.records}
    assert got == {
        ("", "MX", 3600, (f"10 {HOST}.",)),
        ("", "TXT", 3600, ("v=spf1 mx -all",)),
        ("_dmarc", "TXT", 3600, ("v=DMARC1\\; p=none\\; rua=mailto:dmarc@all2all.org",)),
        ("_imaps._tcp", "SRV", 3600, (f"0 1 993 {HOST}.",)),
        ("_pop3s._tcp", "SRV", 3600, (f"0 1 995 {HOST}.",)),
    }


def test_a_domain_file_as_path_gives_its_domain_and_aliases_only(repo: Path) -> None:
    got = records("domains/monsite/monsite.be.yaml")
    assert sorted({r["zone"] for r in got}) == ["monsite.be", "monsite.com"]


def test_a_domain_file_alone_is_a_clear_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(REPO / "examples" / "monsite.be.yaml", tmp_path / "monsite.be.yaml")
    monkeypatch.chdir(tmp_path)
    code, out, err = run("monsite.be.yaml")
    assert code == 1 and out == ""
    assert "a domain file alone names no mail host" in err and "Traceback" not in err
