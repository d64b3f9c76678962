"""MISP attribute types (``misp_types.check``): the categories and defaults of
``describeTypes``, and each family's values normalised and refused as a MISP server does."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.sync.misp_types import (
    VALIDATORS,
    InvalidAttribute,
    check,
    describe_types,
    is_composite,
)

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
TLSH = "T1" + "A" * 70
SSDEEP = "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C"
ONION_V3 = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"


def refused(type_: str, value: str, *, category: str | None = None) -> InvalidAttribute:
    with pytest.raises(InvalidAttribute) as raised:
        check(type_, value, category=category)
    return raised.value


# -- describeTypes ------------------------------------------------------------------------


def test_every_described_type_has_a_validator_and_no_validator_is_for_an_unknown_type() -> None:
    assert set(VALIDATORS) == set(describe_types()["types"])
    assert len(VALIDATORS) == 194


def test_every_types_default_category_allows_it() -> None:
    mappings = describe_types()["category_type_mappings"]
    for type_, defaults in describe_types()["sane_defaults"].items():
        assert type_ in mappings[defaults["default_category"]], type_


@pytest.mark.parametrize(
    ("type_", "value", "category", "to_ids"),
    [
        ("ip-dst", "203.0.113.9", "Network activity", True),
        ("comment", "seen in a phishing wave", "Other", False),
        ("md5", MD5, "Payload delivery", True),
        ("vulnerability", "CVE-2021-44228", "External analysis", False),
    ],
)
def test_category_and_to_ids_default_from_sane_defaults(
    type_: str, value: str, category: str, to_ids: bool
) -> None:
    checked = check(type_, value)
    assert (checked.category, checked.to_ids) == (category, to_ids)


def test_an_empty_category_is_the_types_default() -> None:
    assert check("ip-dst", "203.0.113.9", category="").category == "Network activity"


def test_a_given_category_and_to_ids_are_kept() -> None:
    checked = check("ip-dst", "203.0.113.9", category="Payload delivery", to_ids=False)
    assert (checked.category, checked.to_ids) == ("Payload delivery", False)


def test_a_category_that_does_not_allow_the_type_is_refused_naming_category() -> None:
    error = refused("md5", MD5, category="Network activity")
    assert (error.field, error.message) == ("category", "Options depend on the selected type.")


def test_an_unknown_category_is_refused_naming_category() -> None:
    assert refused("md5", MD5, category="Payload").field == "category"


@pytest.mark.parametrize("type_", ["md4", "MD5", "", "ip"])
def test_an_unknown_type_is_refused_naming_type(type_: str) -> None:
    error = refused(type_, "anything")
    assert (error.field, error.message) == ("type", "Invalid type.")


def test_the_type_is_checked_before_the_category_and_the_category_before_the_value() -> None:
    assert refused("md4", "", category="Nowhere").field == "type"
    assert refused("md5", "not a hash", category="Nowhere").field == "category"


EXAMPLES = {  # a valid value of each type that is not any text at all
    **dict.fromkeys(["md5", "imphash", "ja3-fingerprint-md5", "hassh-md5", "hasshserver-md5",
                     "dom-hash", "x509-fingerprint-md5"], MD5),
    **dict.fromkeys(["sha1", "git-commit-id", "pehash", "x509-fingerprint-sha1", "cdhash"],
                    SHA1),
    **dict.fromkeys(["sha224", "sha512/224", "sha3-224"], "a" * 56),
    **dict.fromkeys(["sha256", "sha512/256", "sha3-256", "authentihash",
                     "x509-fingerprint-sha256"], SHA256),
    **dict.fromkeys(["sha384", "sha3-384"], "b" * 96),
    **dict.fromkeys(["sha512", "sha3-512"], "c" * 128),
    "jarm-fingerprint": "2ad" * 20 + "2a",
    "tlsh": TLSH,
    "telfhash": "t" + "1" * 71,
    "ssdeep": SSDEEP,
    "impfuzzy": "48:ABCD:EFGH",
    "ssh-fingerprint": "MD5:" + ":".join(["ab"] * 16),
    **{f"filename|{hash_}": f"setup.exe|{value}" for hash_, value in [
        ("md5", MD5), ("imphash", MD5), ("sha1", SHA1), ("pehash", SHA1), ("sha224", "a" * 56),
        ("sha512/224", "a" * 56), ("sha3-224", "a" * 56), ("sha256", SHA256),
        ("sha512/256", SHA256), ("sha3-256", SHA256), ("authentihash", SHA256),
        ("sha384", "b" * 96), ("sha3-384", "b" * 96), ("sha512", "c" * 128),
        ("sha3-512", "c" * 128), ("tlsh", TLSH), ("ssdeep", SSDEEP),
        ("impfuzzy", "48:ABCD:EFGH"), ("vhash", "015076655d155z3ez1")]},
    "malware-sample": f"setup.exe|{MD5}",
    **dict.fromkeys(["ip-src", "ip-dst"], "198.51.100.0/24"),
    **dict.fromkeys(["ip-src|port", "ip-dst|port"], "198.51.100.7|443"),
    **dict.fromkeys(["domain", "hostname"], "www.example.com"),
    "domain|ip": "example.com|2001:db8::1",
    "hostname|port": "mail.example.com|25",
    "onion-address": ONION_V3,
    "link": "https://example.com/report",
    "port": "8080",
    "AS": "AS64496",
    "mac-address": "00:1a:2b:3c:4d:5e",
    "mac-eui-64": "00:1a:2b:ff:fe:3c:4d:5e",
    **dict.fromkeys(["email", "email-src", "email-dst", "target-email", "eppn",
                     "whois-registrant-email", "dns-soa-email", "jabber-id"], "ops@example.com"),
    "http-method": "POST",
    "vulnerability": "CVE-2021-44228",
    "weakness": "CWE-79",
    "hex": "DEADBEEF",
    **dict.fromkeys(["btc", "dash", "xmr"], "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
    "iban": "DE89370400440532013000",
    "bic": "DEUTDEFF",
    **dict.fromkeys(["float", "bank-account-nr", "aba-rtn"], "123.5"),
    **dict.fromkeys(["bin", "cc-number"], "4111111111111111"),
    **dict.fromkeys(["phone-number", "prtn", "whois-registrant-phone"], "+41221234567"),
    **dict.fromkeys(["integer", "counter", "size-in-bytes"], "1024"),
    "boolean": "1",
    "datetime": "2024-05-06T07:08:09.000000+0000",
    "cortex": '{"summary": "clean"}',
    "uuid": "5f1e9c2a-8a84-4a4b-9d1f-2b8d6f2c9e11",
    "regkey|value": r"HKLM\Software\Run|evil.exe",
}  # fmt: skip


def test_every_type_accepts_a_value_of_its_own_and_checking_again_changes_nothing() -> None:
    for type_ in describe_types()["types"]:
        first = check(type_, EXAMPLES.get(type_, "something typed by a person"))
        assert check(type_, first.value) == first, type_


# -- values: normalised as MISP does ------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "given", "stored"),
    [
        # hashes: lower case; x509 fingerprints lose their colons
        ("md5", MD5.upper(), MD5),
        ("sha256", f"  {SHA256.upper()}\n", SHA256),
        ("sha512/256", SHA256.upper(), SHA256),
        ("sha3-384", "B" * 96, "b" * 96),
        ("jarm-fingerprint", "2AD" * 20 + "2A", "2ad" * 20 + "2a"),
        ("x509-fingerprint-sha1", ":".join(["DA"] * 20), "da" * 20),
        ("tlsh", TLSH, TLSH.lower()),
        ("cdhash", "A" * 48, "a" * 48),
        ("ssdeep", SSDEEP, SSDEEP),  # base64: case matters
        ("ssh-fingerprint", "SHA256:" + "A" * 43, "SHA256:" + "A" * 43),
        ("filename|sha1", f"Invoice.PDF.exe|{SHA1.upper()}", f"Invoice.PDF.exe|{SHA1}"),
        ("malware-sample", f"dropper.bin|{MD5.upper()}", f"dropper.bin|{MD5}"),
        # addresses: IPv6 compressed, /32 and /128 are addresses, host bits kept
        ("ip-dst", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("ip-dst", "198.51.100.7/32", "198.51.100.7"),
        ("ip-src", "2001:db8::1/128", "2001:db8::1"),
        ("ip-src", "2001:0db8::/032", "2001:db8::/32"),
        ("ip-dst", "10.1.2.3/8", "10.1.2.3/8"),
        ("ip-dst", "::FFFF:198.51.100.7", "::ffff:198.51.100.7"),
        ("ip-dst|port", "198.51.100.7:443", "198.51.100.7|443"),
        ("ip-src|port", "[2001:db8::1]:8443", "2001:db8::1|8443"),
        ("ip-src|port", "2001:DB8::1|0443", "2001:db8::1|443"),
        ("ip-src|port", "2001:db8::1.80", "2001:db8::1|80"),
        ("ip-src|port", "2001:db8::1 port 80", "2001:db8::1|80"),
        ("ip-src|port", "2001:db8::1#53", "2001:db8::1|53"),
        ("ip-src|port", "2001:db8:1:2:3:4:5:6:22", "2001:db8:1:2:3:4:5:6|22"),
        # names: lower case, no trailing dot, punycode
        ("domain", "Example.COM.", "example.com"),
        ("domain", "bücher.example", "xn--bcher-kva.example"),
        ("hostname", "WWW.Example.com", "www.example.com"),
        ("hostname|port", "Mail.Example.com:587", "mail.example.com|587"),
        ("domain|ip", "EXAMPLE.org|2001:DB8::0:1", "example.org|2001:db8::1"),
        ("onion-address", ONION_V3.upper(), ONION_V3),
        # e-mail addresses: lower case for the types MISP lower-cases, and only those
        ("email-src", "Alice@Example.COM", "alice@example.com"),
        ("whois-registrant-email", "Bob@Example.com", "bob@example.com"),
        ("dns-soa-email", "HostMaster@Example.com", "HostMaster@Example.com"),
        ("email", "*@phish.example", "*@phish.example"),
        # URLs: MISP keeps them as typed, a scheme is not needed
        ("url", "example.com/login.php?id=1", "example.com/login.php?id=1"),
        ("uri", "/wp-admin/Evil.PHP", "/wp-admin/Evil.PHP"),
        ("link", "https://www.example.com/a?b=c#d", "https://www.example.com/a?b=c#d"),
        # identifiers
        ("vulnerability", "cve-2021-44228", "CVE-2021-44228"),
        ("vulnerability", "CVE\u20132014\u20130160", "CVE-2014-0160"),
        ("weakness", "cwe-79", "CWE-79"),
        ("http-method", "post", "POST"),
        ("hex", "deadBEEF", "DEADBEEF"),
        ("uuid", "{5F1E9C2A-8A84-4A4B-9D1F-2B8D6F2C9E11}", "5f1e9c2a-8a84-4a4b-9d1f-2b8d6f2c9e11"),
        ("anonymised", "Hash-Of-A-Name", "hash-of-a-name"),
        # hardware and routing
        ("mac-address", "00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e"),
        ("mac-address", "001a.2b3c.4d5e", "00:1a:2b:3c:4d:5e"),
        ("mac-eui-64", "001A2BFFFE3C4D5E", "00:1a:2b:ff:fe:3c:4d:5e"),
        ("AS", "AS64496", "64496"),
        ("AS", "as1.10", "65546"),
        ("port", "0443", "443"),
        # numbers, money, people
        ("float", "-1.5e3", "-1.5e3"),
        ("integer", "+007", "7"),
        ("counter", "0", "0"),
        ("size-in-bytes", "000123", "123"),
        ("boolean", "True", "1"),
        ("boolean", "FALSE", "0"),
        ("phone-number", "0041 (0)22 123 45 67", "+41221234567"),
        ("cc-number", "4111 1111-1111 1111", "4111111111111111"),
        ("iban", "de89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("btc", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
        (
            "xmr",
            "4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx",
            "4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx",
        ),
        ("datetime", "2024-05-06 07:08:09", "2024-05-06T07:08:09.000000+0000"),
        ("datetime", "2024-05-06T07:08:09.5+02:00", "2024-05-06T07:08:09.500000+0200"),
        ("datetime", "2024-05-06T07:08:09Z", "2024-05-06T07:08:09.000000+0000"),
        # text: anything, trimmed
        ("comment", "  two\nlines \t", "two\nlines"),
        (
            "cpe",
            "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*",
            "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*",
        ),
        ("github-username", "octocat", "octocat"),
        ("github-repository", "octo-org/Hello-World", "octo-org/Hello-World"),
        ("attachment", "screenshot 1.png", "screenshot 1.png"),
        ("text", "caf\u00e9 \U0001f600", "caf\u00e9 \U0001f600"),
    ],
)
def test_valid_values_are_stored_normalised_as_misp_does(
    type_: str, given: str, stored: str
) -> None:
    assert check(type_, given).value == stored


# -- values: refused ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value", "message_part"),
    [
        ("md5", MD5[:-1], "expected: 32 hexadecimal"),
        ("md5", MD5[:-1] + "g", "expected: 32 hexadecimal"),
        ("sha1", SHA256, "expected: 40 hexadecimal"),
        ("sha512", "c" * 127, "expected: 128 hexadecimal"),
        ("pehash", MD5, "PEhash"),
        ("x509-fingerprint-sha256", SHA1, "expected: 64 hexadecimal"),
        ("tlsh", "T1ABCDEF", "at least 35"),
        ("telfhash", "t1abc", "70 or 72"),
        ("ssdeep", "AXGBicFlgVNhBGcL6wCrFQEv", "blocksize:hash:hash"),
        ("impfuzzy", "x:ABCD:EFGH", "imports:hash:hash"),
        ("cdhash", SHA1[:-1], "40 or more"),
        ("ssh-fingerprint", "SHA256:too-short", "MD5 or SHA256"),
        ("filename|md5", f"setup.exe|{SHA1}", "expected: 32 hexadecimal"),
        ("filename|sha256", f"two\nlines.exe|{SHA256}", "new line"),
        ("filename|ssdeep", "setup.exe|nonsense", "blocksize:hash:hash"),
        ("malware-sample", f"dropper.bin|{SHA1}", "expected: 32 hexadecimal"),
        ("ip-dst", "999.1.1.1", "IP address has an invalid format."),
        ("ip-dst", "198.51.100.007", "IP address has an invalid format."),
        ("ip-dst", "fe80::1%eth0", "IP address has an invalid format."),
        ("ip-dst", "example.com", "IP address has an invalid format."),
        ("ip-src", "198.51.100.0/33", "lower or equal 32"),
        ("ip-src", "2001:db8::/129", "lower or equal 128"),
        ("ip-src", "198.51.100.0/255.255.255.0", "Invalid CIDR notation"),
        ("ip-dst|port", "198.51.100.7:0", "Port numbers"),
        ("ip-dst|port", "198.51.100.7|65536", "Port numbers"),
        ("ip-dst|port", "198.51.100.7|http", "Port numbers"),
        ("ip-dst|port", "198.51.100.0/24|80", "IP address has an invalid format."),
        ("ip-dst|port", "198.51.100.7|80|90", "composite"),
        ("ip-dst|port", "198.51.100.7", "composite"),
        ("domain", "exa mple.com", "Domain has an invalid format."),
        ("domain", "localhost", "Domain has an invalid format."),
        ("domain", "example.c", "Domain has an invalid format."),
        ("hostname", "http://example.com", "Hostname has an invalid format."),
        ("hostname|port", "mail.example.com:smtp", "Port numbers"),
        ("domain|ip", "example.com|999.0.0.1", "IP address has an invalid format."),
        ("onion-address", "example.onion", "Onion address"),
        ("email", "not an address", "Email address has an invalid format."),
        ("email-dst", "alice@localhost", "Email address has an invalid format."),
        ("link", "example.com/report", "right type/format"),
        ("link", "https://exa mple.com/", "right type/format"),
        ("link", "https:///path-only", "right type/format"),
        ("link", "http://example.com:port/", "right type/format"),
        ("url", "https://example.com/\nsecond line", "new line"),
        ("mac-address", "00:1a:2b:3c:4d", "right type/format"),
        ("mac-address", "00:1a:2b:3c:4d:5g", "right type/format"),
        ("mac-eui-64", "00:1a:2b:3c:4d:5e", "right type/format"),
        ("port", "65536", "Port numbers"),
        ("port", "-1", "Port numbers"),
        ("AS", "AS4294967296", "AS number"),
        ("AS", "AS-PRIVATE", "AS number"),
        ("vulnerability", "CVE-2021-442", "CVE-xxxx-xxxx"),
        ("vulnerability", "2021-44228", "CVE-xxxx-xxxx"),
        ("weakness", "CWE-XSS", "CWE-x"),
        ("http-method", "FETCH", "Unknown HTTP method."),
        ("hex", "0xZZ", "right type/format"),
        ("btc", "1Boat SLRH", "right type/format"),
        ("float", "1,5", "right type/format"),
        ("float", "inf", "right type/format"),
        ("integer", "1.0", "integer value"),
        ("counter", "-1", "whole number"),
        ("size-in-bytes", "1 KB", "whole number"),
        ("boolean", "no", "right type/format"),
        ("boolean", "maybe", "right type/format"),
        ("datetime", "next monday", "ISO 8601"),
        ("datetime", "2024-13-01", "ISO 8601"),
        ("phone-number", "call me", "right type/format"),
        ("phone-number", "+41+22", "right type/format"),
        ("windows-service-name", r"C:\evil", "slashes"),
        ("cortex", "{not json", "right type/format"),
        ("uuid", "not-a-uuid", "RFC 4122"),
        ("github-username", "octo\ncat", "new line"),
        ("regkey|value", r"HKLM\Run", "composite"),
    ],
)
def test_invalid_values_are_refused_naming_value(type_: str, value: str, message_part: str) -> None:
    error = refused(type_, value)
    assert error.field == "value"
    assert message_part in error.message


@pytest.mark.parametrize("value", ["", "   ", "\t\n", "\0"])
def test_an_empty_value_is_refused(value: str) -> None:
    assert refused("text", value).message == "Value cannot be empty."


def test_a_value_of_control_characters_only_is_refused() -> None:
    assert "control characters" in refused("text", "\x01\x02\x1b").message


def test_a_value_holding_a_nul_is_refused() -> None:
    assert "NUL" in refused("comment", "before\0after").message


def test_a_value_longer_than_misp_stores_is_refused() -> None:
    check("text", "x" * 65535)
    assert "too long" in refused("text", "x" * 65536).message
    assert "too long" in refused("text", "\u00e9" * 32768).message  # counted in bytes


def test_a_lone_surrogate_is_refused_as_a_value_not_a_crash() -> None:
    assert refused("text", "half of \ud83d").field == "value"


def test_numbers_longer_than_python_converts_are_handled_as_values() -> None:
    assert check("counter", "9" * 5000).value == "9" * 5000
    assert refused("port", "9" * 5000).field == "value"
    assert refused("AS", "1." + "9" * 5000).field == "value"
    assert check("ip-dst", "198.51.100.7/" + "0" * 5000 + "32").value == "198.51.100.7"


# -- composite types ----------------------------------------------------------------------


def test_a_composite_value_is_split_into_value1_and_value2_and_rejoined() -> None:
    checked = check("filename|sha256", f"report.docm|{SHA256.upper()}")
    assert (checked.value1, checked.value2) == ("report.docm", SHA256)
    assert checked.value == f"{checked.value1}|{checked.value2}"


def test_a_value_that_is_not_composite_has_an_empty_value2() -> None:
    checked = check("url", "https://example.com/a|b")
    assert (checked.value1, checked.value2) == ("https://example.com/a|b", "")


@pytest.mark.parametrize("value", [f"|{MD5}", "setup.exe|", f"a|b|{MD5}", f"setup.exe {MD5}"])
def test_a_composite_needs_exactly_two_non_empty_halves(value: str) -> None:
    assert "composite" in refused("filename|md5", value).message


def test_malware_sample_is_composite_though_its_name_has_no_pipe() -> None:
    assert is_composite("malware-sample")
    assert is_composite("ip-dst|port")
    assert not is_composite("ip-dst")
    assert all(
        is_composite(type_) == ("|" in type_ or type_ == "malware-sample")
        for type_ in describe_types()["types"]
    )


# -- defanged indicators ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "given", "stored"),
    [
        ("url", "hxxps://evil[.]example[.]com/payload", "https://evil.example.com/payload"),
        ("url", "HXXP://evil(dot)example/x", "http://evil.example/x"),
        ("url", "meow://evil[dot]example/x", "http://evil.example/x"),
        ("url", "[hxxp://]evil[.]example[:]8080/x", "http://evil.example:8080/x"),
        ("link", "hxxps://evil[.]example/report", "https://evil.example/report"),
        ("domain", "evil[.]example", "evil.example"),
        ("hostname", "c2[.]Evil[.]example", "c2.evil.example"),
        ("ip-dst", "198[.]51[.]100[.]7", "198.51.100.7"),
        ("domain|ip", "evil[.]example|198[.]51[.]100[.]7", "evil.example|198.51.100.7"),
        ("email-src", "Phisher[at]evil[.]example", "phisher@evil.example"),
        ("email", "phisher[@]evil[dot]example", "phisher@evil.example"),
    ],
)
def test_defanged_indicators_are_refanged_as_misp_does(type_: str, given: str, stored: str) -> None:
    assert check(type_, given).value == stored


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("comment", "hxxp://evil[.]example"),
        ("uri", "/x[.]php"),
        ("target-email", "ops[.]x@example.com"),
    ],
)
def test_only_the_types_misp_refangs_are_refanged(type_: str, value: str) -> None:
    assert check(type_, value).value == value


# -- properties ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.ip_addresses(v=4))
def test_any_ipv4_address_round_trips_for_ip_dst(address: ipaddress.IPv4Address) -> None:
    assert check("ip-dst", str(address)).value == str(address)


@settings(max_examples=60, deadline=None)
@given(st.ip_addresses(v=6))
def test_any_ipv6_address_is_stored_compressed(address: ipaddress.IPv6Address) -> None:
    stored = check("ip-dst", address.exploded.upper()).value
    assert ipaddress.ip_address(stored) == address
    assert stored == (f"::ffff:{address.ipv4_mapped}" if address.ipv4_mapped else str(address))


@settings(max_examples=60, deadline=None)
@given(st.ip_addresses(), st.integers(1, 65535))
def test_any_address_and_port_round_trip_for_ip_src_port(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    checked = check("ip-src|port", f"{address}|{port}")
    assert ipaddress.ip_address(checked.value1) == address
    assert checked.value2 == str(port)


@settings(max_examples=60, deadline=None)
@given(st.text("0123456789abcdefABCDEF", min_size=32, max_size=32))
def test_any_32_hex_characters_are_an_md5_stored_in_lower_case(digest: str) -> None:
    assert check("md5", digest).value == digest.lower()


@settings(max_examples=60, deadline=None)
@given(st.text("0123456789abcdef", min_size=1, max_size=64).filter(lambda s: len(s) != 32))
def test_no_other_length_is_an_md5(digest: str) -> None:
    assert refused("md5", digest).field == "value"


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), min_size=1))
def test_any_text_with_something_in_it_is_a_comment_trimmed(text: str) -> None:
    trimmed = text.strip(" \t\n\r\0\x0b")
    if not trimmed or all(ord(c) < 32 or ord(c) == 127 for c in trimmed):
        assert refused("comment", text).field == "value"
    else:
        assert check("comment", text).value == trimmed
