"""The validated scalars of values.py, as tables: what is accepted (and what it becomes), and
what is refused (with a fragment of the message that tells the user why)."""

from __future__ import annotations

import pytest

from mailstate.model import values as v

K, M, G, T = 1024, 1024**2, 1024**3, 1024**4


def _ok(fn, raw, expected):
    assert fn(raw) == expected


def _bad(fn, raw, fragment):
    with pytest.raises(ValueError) as exc:
        fn(raw)
    assert fragment in str(exc.value)


SIZES = [("500M", 500 * M), ("3G", 3 * G), ("3GiB", 3 * G), ("3g", 3 * G),
         (" 30G ", 30 * G), ("1T", T), ("1024k", M), ("0.5G", 512 * M), ("1.5G", 1536 * M),
         ("0M", 0), ("1024T", 1024 * T), ("0.001953125G", 2 * M)]
BAD_SIZES = [(3, "has no unit"), ("3", "not a size"), ("3 apples", "not a size"),
             ("-1G", "not a size"), ("1.5k", "whole number of megabytes"), ("1k", "whole number"),
             (True, "written like"), (None, "written like"), (3.0, "written like"),
             ("1e3G", "not a size"), ("", "not a size"), ("3G\n4G", "not a size"),
             ("1025T", "too large"), ("9" * 400 + "T", "too large"),
             ("0.0000001G", "whole number"), ("3GB", "write 3G or 3GiB"),
             ("3 GB", "powers of 1024"), ("500mb", "write 500M or 500MiB")]


@pytest.mark.parametrize(("raw", "expected"), SIZES)
def test_size(raw, expected):
    _ok(v.parse_size, raw, expected)


@pytest.mark.parametrize(("raw", "fragment"), BAD_SIZES)
def test_bad_size(raw, fragment):
    _bad(v.parse_size, raw, fragment)


@pytest.mark.parametrize(("size", "text"), [(3 * G, "3G"), (512 * M, "512M"), (1536 * M, "1536M"),
                                            (T, "1T"), (300 * G, "300G"), (M, "1M")])
def test_format_size_round_trip(size, text):
    assert v.format_size(size) == text
    assert v.parse_size(text) == size


DURATIONS = [("10m", 600), ("1h30m", 5400), ("1h 30m", 5400), ("2d", 172800), ("1w", 604800),
             ("90s", 90), ("15M", 900), (600, 600), (0, 0), (" 10m\n", 600)]
BAD_DURATIONS = [("ten minutes", "not a duration"), ("10", "not a duration"),
                 ("10x", "not a duration"), ("m10", "not a duration"), ("-5m", "not a duration"),
                 ("", "not a duration"), (-5, "cannot be negative"), (True, "written like"),
                 (None, "written like"), (1.5, "written like")]


@pytest.mark.parametrize(("raw", "expected"), DURATIONS)
def test_duration(raw, expected):
    _ok(v.parse_duration, raw, expected)


@pytest.mark.parametrize(("raw", "fragment"), BAD_DURATIONS)
def test_bad_duration(raw, fragment):
    _bad(v.parse_duration, raw, fragment)


@pytest.mark.parametrize(("seconds", "text"), [(600, "10m"), (900, "15m"), (3600, "1h"),
                                               (86400, "1d"), (90, "90s"), (604800, "1w")])
def test_format_duration(seconds, text):
    assert v.format_duration(seconds) == text
    assert v.parse_duration(text) == seconds


LOGINS = ["monsite", "monsite0001", "a", "0abc", "a.b-c_d", "m" * 64]
BAD_LOGINS = [("", "non-empty"), ("Monsite0001", "contains 'M'"), ("-a", "start and end"),
              ("a-", "start and end"), (".a", "start and end"), ("a..b", "'..'"),
              ("..", "'..'"), ("a/b", "'/'"), ("../etc", "'/'"), ("a b", "a space"),
              ("a:b", "contains ':'"), ("a,b", "contains ','"), ("a#b", "contains '#'"),
              ("a\"b", "contains '\"'"), ("a'b", "contains \"'\""), ("a\nb", "U+000A"),
              ("a\0b", "U+0000"), ("é", "contains 'é'"), ("a@b", "contains '@'"),
              ("m" * 65, "at most 64")]


@pytest.mark.parametrize("raw", LOGINS)
def test_login(raw):
    _ok(v.check_login, raw, raw)


@pytest.mark.parametrize(("raw", "fragment"), BAD_LOGINS)
def test_bad_login(raw, fragment):
    _bad(v.check_login, raw, fragment)


LOCALS = [("info", "info"), ("Info", "info"), ("first.last", "first.last"), ("a+tag", "a+tag"),
          ("a_", "a_"), ("x-1", "x-1"), ("i" * 64, "i" * 64)]
BAD_LOCALS = [("", "non-empty"), (".info", "start with"), ("info.", "start with"),
              ("a..b", "'..'"), ("a b", "a space"), ("a,b", "','"), ("a:b", "':'"),
              ("a#b", "'#'"), ('"a"', "'\"'"), ("a\0", "U+0000"), ("a\r\n", "U+000D"),
              ("a@b", "'@'"), ("a/b", "'/'"), ("a|b", "'|'"), ("ü", "'ü'"),
              ("i" * 65, "at most 64")]


@pytest.mark.parametrize(("raw", "expected"), LOCALS)
def test_local_part(raw, expected):
    _ok(v.check_local_part, raw, expected)


@pytest.mark.parametrize(("raw", "fragment"), BAD_LOCALS)
def test_bad_local_part(raw, fragment):
    _bad(v.check_local_part, raw, fragment)


DOMAINS = [("monsite.be", "monsite.be"), ("MonSite.BE", "monsite.be"),
           ("monsite.be.", "monsite.be"), ("mail.all2all.org", "mail.all2all.org"),
           ("münchen.de", "xn--mnchen-3ya.de"), ("MÜNCHEN.DE", "xn--mnchen-3ya.de"),
           ("xn--mnchen-3ya.de", "xn--mnchen-3ya.de"), ("bücher.example", "xn--bcher-kva.example"),
           ("монсайт.рф", "xn--80asheetj.xn--p1ai"), ("a-b.be", "a-b.be"),
           (".".join(["a" * 63] * 3) + ".be", ".".join(["a" * 63] * 3) + ".be")]
BAD_DOMAINS = [("", "non-empty"), ("monsite", "not a full domain"), ("mon site.be", "a space"),
               ("mon_site.be", "label 'mon_site'"), ("-a.be", "label '-a'"), ("a-.be", "'a-'"),
               ("a..be", "label ''"), ("1.2.3.4", "IP address"), ("☃.be", "internationalised"),
               ("xn--zz.be", "punycode"), ("a" * 64 + ".be", "1-63"),
               (".".join(["a" * 63] * 4) + ".be", "at most 253"), ("monsite.be\n", "U+000A"),
               ("monsite.be/x", "'monsite.be/x'"), ("monsite.be:25", "'monsite.be:25'"),
               ("mon\u200bsite.be", "U+200B"), ("monsite.be\0", "U+0000")]


@pytest.mark.parametrize(("raw", "expected"), DOMAINS)
def test_domain(raw, expected):
    _ok(v.check_domain, raw, expected)


@pytest.mark.parametrize(("raw", "fragment"), BAD_DOMAINS)
def test_bad_domain(raw, fragment):
    _bad(v.check_domain, raw, fragment)


@pytest.mark.parametrize(("raw", "expected"), [
    ("Info@MonSite.BE", "info@monsite.be"), ("info@münchen.de", "info@xn--mnchen-3ya.de"),
    ("a+b@gmail.com", "a+b@gmail.com")])
def test_address(raw, expected):
    _ok(v.check_address, raw, expected)


@pytest.mark.parametrize(("raw", "fragment"), [
    ("info", "not an e-mail address"), ("a@b@c.be", "not an e-mail address"),
    ("@monsite.be", "non-empty"), ("info@", "non-empty"), ("info@localhost", "full domain"),
    ("in fo@monsite.be", "a space"), ("info@monsite.be,x@y.be", "not an e-mail address"),
    ("info@monsite.be\n", "U+000A")])
def test_bad_address(raw, fragment):
    _bad(v.check_address, raw, fragment)


@pytest.mark.parametrize("raw", ["Info", "Jean-Luc Émile", "Koen Lefever", "O'Brien", "I" * 100])
def test_name(raw):
    _ok(v.check_name, raw, raw)


@pytest.mark.parametrize(("raw", "fragment"), [
    ("", "non-empty"), ("  ", "non-empty"), ("a:b", "':'"), ("a\nb", "U+000A"),
    ("a\tb", "U+0009"), (" lead", "start or end"), ("trail ", "start or end"),
    ("a\u2028b", "U+2028"), ("a\u200bb", "U+200B"), ("a\0", "U+0000"), ("I" * 101, "at most 100")])
def test_bad_name(raw, fragment):
    _bad(v.check_name, raw, fragment)


@pytest.mark.parametrize("raw", ["Out of office", "Afwezig — tot 5 januari", 'Re: "x" \\ y'])
def test_subject(raw):
    _ok(v.check_subject, raw, raw)


@pytest.mark.parametrize(("raw", "fragment"), [
    ("", "non-empty"), ("a\nBcc: x@y.be", "U+000A"), ("a\rb", "U+000D"), ("\x1b[31m", "U+001B"),
    ("a\u2028b", "U+2028"), ("a\u202eb", "U+202E"), ("a\tb", "U+0009"), ("A" * 201, "at most 200")])
def test_bad_subject(raw, fragment):
    _bad(v.check_subject, raw, fragment)


@pytest.mark.parametrize(("raw", "expected"), [
    ("Away.\r\nBack soon.\r\n", "Away.\nBack soon.\n"), ("a\tb\n", "a\tb\n"),
    ("Één regel", "Één regel")])
def test_message(raw, expected):
    _ok(v.check_message, raw, expected)


@pytest.mark.parametrize(("raw", "fragment"), [
    ("", "non-empty"), ("  \n", "non-empty"), ("a\0b", "U+0000"), ("a\x1bb", "U+001B"),
    ("a\rb", "U+000D"), ("a\u2029b", "U+2029"), ("x" * 10_001, "at most 10000")])
def test_bad_message(raw, fragment):
    _bad(v.check_message, raw, fragment)
