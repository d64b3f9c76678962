"""MISP attribute types: the categories that allow each one, and what its value looks like.

Type and category are checked against MISP's ``describeTypes`` as pymisp ships it
(``pymisp/data/describeTypes.json``), so this service and the MISP servers it syncs with
share one vocabulary. A value is checked and normalised the way a MISP server does before
it saves an attribute (``MispAttribute::beforeValidateMassage``, then
``AttributeValidationTool::modifyBeforeValidation`` and ``::validate``): trimmed, re-fanged
for the types MISP re-fangs, normalised per type, then validated. The value stored here is
then the value a MISP server would store, and the same indicator correlates however it was
typed. :data:`VALIDATORS` says, for every type, which rule applies.

On purpose, we part from MISP where it is plainly wrong or its storage differs from ours:

* ``suricata``, ``edge-extension-id``, ``filename|impfuzzy`` and ``uuid`` have a rule (MISP's
  ``validate`` throws on them): like ``snort``, like ``chrome-extension-id``, filename and
  impfuzzy, and a UUID in canonical lower-case form.
* ``onion-address`` also takes v3 (56 characters) addresses: a typo in MISP's pattern
  lets only v2 through.
* ``boolean`` takes ``true``/``false``/``1``/``0`` only (MISP turns any other text, ``no``
  included, into ``1``); ``integer`` takes a signed whole number (MISP's ``is_int`` refuses
  every string); ``datetime`` takes ISO 8601 only (PHP also parses ``next monday``).
* ``malware-sample`` needs an MD5 after the filename (MISP computes it itself, so a MISP
  server always sends one), ``attachment`` is one line like ``filename``.
* ``hostname`` (and the host of ``hostname|port``) is normalised like ``domain``: trailing
  dots dropped, an internationalised name written in punycode.
* Whole numbers (port, AS, counter, size, integer, CIDR prefix) lose their leading zeros,
  ``git-commit-id`` is lower-cased like every other hash.
* Both halves of a composite must be non-empty (MISP's ``checkComposites`` flags them) and
  ``1.2.3.4|80|90`` is refused, not cut to ``1.2.3.4|80``.
* A value may not hold a NUL (PostgreSQL's ``text`` cannot), and characters outside the
  Basic Multilingual Plane are kept (MISP turns them into ``?`` for MySQL's ``utf8``).
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

__all__ = [
    "VALIDATORS",
    "Checked",
    "InvalidAttribute",
    "Validator",
    "check",
    "describe_types",
    "is_composite",
    "pymisp_data",
]

Validator = Callable[[str], str]
"""Takes a trimmed, re-fanged value; returns it normalised or raises :class:`InvalidAttribute`."""


class InvalidAttribute(ValueError):
    """An attribute MISP would refuse: ``field`` is ``type``, ``category`` or ``value``, and
    ``message`` is MISP's wording, so a MISP client reads the error it knows."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Checked:
    """An attribute as it is stored and shared: ``value`` normalised, and split into
    ``value1``/``value2`` for a composite type (``value2`` is ``""`` otherwise)."""

    category: str
    type: str
    value: str
    value1: str
    value2: str
    to_ids: bool


@functools.cache
def describe_types() -> dict[str, Any]:
    """The ``result`` of pymisp's ``describeTypes.json``: ``types``, ``categories``,
    ``category_type_mappings`` and ``sane_defaults``. Read on first use, then kept and
    shared: callers must not change it."""
    document = pymisp_data("describeTypes.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(document)["result"]
    return result


def pymisp_data(*parts: str) -> Path:
    """A file of the pymisp package's ``data`` folder, found without importing pymisp (which
    brings requests and its own set-up: half a second of a first request)."""
    spec = importlib.util.find_spec("pymisp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pymisp package (its data folder) is not installed")
    return Path(next(iter(spec.submodule_search_locations)), "data", *parts)


def is_composite(type_: str) -> bool:
    """Whether values of ``type_`` are two values joined by ``|`` (``malware-sample`` is
    ``filename|md5`` though its name does not say so)."""
    return "|" in type_ or type_ == "malware-sample"


def check(
    type_: str, value: str, *, category: str | None = None, to_ids: bool | None = None
) -> Checked:
    """Validate and normalise one attribute as a MISP server would before saving it.

    A missing (or empty) ``category`` and a missing ``to_ids`` take the type's defaults.
    Raises :class:`InvalidAttribute` naming the first field MISP would refuse, in MISP's
    order: ``type``, then ``category``, then ``value``.
    """
    defaults = describe_types()["sane_defaults"].get(type_)
    validator = VALIDATORS.get(type_)
    if defaults is None or validator is None:
        raise InvalidAttribute("type", "Invalid type.")
    category = category or defaults["default_category"]
    _check_category(type_, category)
    normalised = _normalise(type_, value, validator)
    value1, value2 = normalised.split("|") if is_composite(type_) else (normalised, "")
    return Checked(
        category=category,
        type=type_,
        value=normalised,
        value1=value1,
        value2=value2,
        to_ids=bool(defaults["to_ids"] if to_ids is None else to_ids),
    )


def _check_category(type_: str, category: str) -> None:
    allowed = describe_types()["category_type_mappings"].get(category)
    if allowed is None:
        raise InvalidAttribute("category", "Invalid category.")
    if type_ not in allowed:
        raise InvalidAttribute("category", "Options depend on the selected type.")


# -- the pipeline every value goes through -------------------------------------------------

_TRIM = " \t\n\r\0\x0b"  # what PHP's trim() removes
_MAX_BYTES = 65535
_WRONG_FORMAT = (
    'Value not in the right type/format. Please double check the value or select type "other".'
)
_COMPOSITE = "Composite type found but the value not in the composite (value1|value2) format."
_CONTROL = (
    "Value provided consists purely of control characters and is therefore considered to be empty."
)


def _refuse(message: str) -> InvalidAttribute:
    return InvalidAttribute("value", message)


def _normalise(type_: str, value: str, validator: Validator) -> str:
    value = value.strip(_TRIM)
    if not value:
        raise _refuse("Value cannot be empty.")
    if "\0" in value:
        raise _refuse("Value must not contain NUL characters.")
    if _is_control(value):
        raise _refuse(_CONTROL)
    value = validator(_refang(type_, value))
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, from JSON's \ud800
        raise _refuse("Value is not valid Unicode text.") from None
    if size > _MAX_BYTES:
        raise _refuse(
            "The entered string is too long and would get truncated. Please consider "
            "adding the data as an attachment instead"
        )
    return value


_NOT_CONTROL = re.compile(r"[^\x00-\x1f\x7f]")


def _is_control(text: str) -> bool:
    """Every character (none, for ``""``) is below 32 or is 127."""
    return _NOT_CONTROL.search(text) is None


_URLS = frozenset({"link", "url"})
_EMAILS = frozenset({"email", "email-src", "email-dst"})
_DEFANGED_DOTS = _URLS | _EMAILS | {"ip-src", "ip-dst", "domain", "hostname", "domain|ip"}
_REFANGS: tuple[tuple[re.Pattern[str], str, frozenset[str]], ...] = (
    (re.compile(r"^(?:hxxp|hxtp|htxp|meow|h\[tt\]p)", re.IGNORECASE | re.ASCII), "http", _URLS),
    (re.compile(r"\[\.\]|\[dot\]|\(dot\)"), ".", _DEFANGED_DOTS),
    (re.compile(r"\[hxxp://\]"), "http://", _URLS),
    (re.compile(r"\[@\]|\[at\]"), "@", _EMAILS),
    (re.compile(r"\[:\]"), ":", _URLS),
)


def _refang(type_: str, value: str) -> str:
    """Undo the defanging MISP undoes (``hxxp://evil[.]com``), for the types it does so."""
    for pattern, replacement, types in _REFANGS:
        if type_ in types:
            value = pattern.sub(replacement, value)
    return value


def _pair(first: Validator, second: Validator, *, prepare: Validator | None = None) -> Validator:
    """A composite ``first|second``, after ``prepare`` wrote it with its ``|``."""

    def validate(value: str) -> str:
        halves = (prepare(value) if prepare else value).split("|")
        if len(halves) != 2 or not all(halves):
            raise _refuse(_COMPOSITE)
        if any(_is_control(half) for half in halves):
            raise _refuse(_CONTROL)
        return f"{first(halves[0])}|{second(halves[1])}"

    return validate


# -- text ---------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # is_numeric


def _whole_number(text: str, *, at_most: int | None = None) -> str | None:
    """``text`` without its leading zeros if it is digits only (and not above ``at_most``).

    Works on the digits, not ``int()``: Python refuses to convert more than 4300 digits,
    and a 65 kB counter must be refused as a value, not crash as a ``ValueError``.
    """
    if not _DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    if at_most is not None and (len(digits) > len(str(at_most)) or int(digits) > at_most):
        return None
    return digits


def _text(value: str) -> str:
    """Rules, keys, patterns, free text: MISP asks only that they are not empty."""
    return value


def _lowercase(value: str) -> str:
    return value.lower()


def _line(value: str) -> str:
    if "\n" in value:
        raise _refuse("Value must not contain new line character.")
    return value


def _filename(value: str) -> str:
    if "\n" in value:
        raise _refuse("Filename must not contain new line character.")
    return value


def _service_name(value: str) -> str:
    if len(value.encode("utf-8")) > 256 or "/" in value or "\\" in value:
        raise _refuse(
            "Invalid format. Only values shorter than 256 characters that don't include any "
            "forward or backward slashes are allowed."
        )
    return value


def _upper(value: str) -> str:
    return value.replace("\u2013", "-").upper()  # an en dash, as word processors type it


def _pattern(regex: str, *, message: str = _WRONG_FORMAT, case: Validator = _text) -> Validator:
    """Values that match ``regex`` whole once ``case`` (upper- or lower-casing) is applied."""
    compiled = re.compile(regex, re.ASCII)

    def validate(value: str) -> str:
        value = case(value)
        if not compiled.fullmatch(value):
            raise _refuse(message)
        return value

    return validate


_cve = _pattern(
    r"CVE-[0-9]{4}-[0-9]{4,}", message="Invalid format. Expected: CVE-xxxx-xxxx...", case=_upper
)
_cwe = _pattern(r"CWE-[0-9]+", message="Invalid format. Expected: CWE-x...", case=_upper)
_hex_string = _pattern(r"[0-9A-F]+", case=_upper)
_http_method = _pattern(  # anywhere in the value, as MISP looks for it
    r"(?s:.*)(?:OPTIONS|GET|HEAD|POST|PUT|DELETE|TRACE|CONNECT|PROPFIND|PROPPATCH|MKCOL|COPY|MOVE|"
    r"LOCK|UNLOCK|VERSION-CONTROL|REPORT|CHECKOUT|CHECKIN|UNCHECKOUT|MKWORKSPACE|UPDATE|"
    r"LABEL|MERGE|BASELINE-CONTROL|MKACTIVITY|ORDERPATCH|ACL|PATCH|SEARCH)(?s:.*)",
    message="Unknown HTTP method.",
    case=_upper,
)


def _cortex(value: str) -> str:
    try:
        json.loads(value)
    except ValueError:
        raise _refuse(_WRONG_FORMAT) from None
    return value


def _uuid(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise _refuse("Please provide a valid RFC 4122 UUID") from None


# -- hashes -------------------------------------------------------------------------------


def _hex(length: int, *, message: str | None = None) -> Validator:
    """A digest of exactly ``length`` hexadecimal characters, stored in lower case."""
    refusal = message or (
        f"Checksum has an invalid length or format (expected: {length} hexadecimal "
        'characters). Please double check the value or select type "other".'
    )

    def validate(value: str) -> str:
        value = value.lower()
        if len(value) != length or not _HEX.fullmatch(value):
            raise _refuse(refusal)
        return value

    return validate


def _fingerprint(length: int) -> Validator:
    """An X.509 fingerprint, with or without the colons between its bytes."""
    digest = _hex(length)

    def validate(value: str) -> str:
        return digest(value.replace(":", ""))

    return validate


_PEHASH = (
    "The input doesn't match the expected sha1 format (expected: 40 hexadecimal "
    "characters). Keep in mind that MISP currently only supports SHA1 for PEhashes."
)


_cdhash = _pattern(
    r"[0-9a-f]{40,}",
    message="The input doesn't match the expected format (expected: 40 or more hexadecimal "
    "characters)",
    case=_lowercase,
)
_ssdeep = _pattern(
    r"[0-9]+:[0-9a-zA-Z/+]*:[0-9a-zA-Z/+]*",
    message="Invalid SSDeep hash. The format has to be blocksize:hash:hash",
)


def _tlsh(value: str) -> str:
    value = value.lower()
    digest = value.removeprefix("t")
    if len(digest) <= 35 or not _HEX.fullmatch(digest):
        raise _refuse(
            "Checksum has an invalid length or format (expected: at least 35 hexadecimal "
            "characters, optionally starting with t1 instead of hexadecimal characters). "
            'Please double check the value or select type "other".'
        )
    return value


def _telfhash(value: str) -> str:
    if len(value) not in (70, 72):
        raise _refuse(
            "Checksum has an invalid length or format (expected: 70 or 72 hexadecimal "
            'characters). Please double check the value or select type "other".'
        )
    return value.lower()


def _impfuzzy(value: str) -> str:
    if value.count(":") != 2 or not _DIGITS.fullmatch(value.split(":")[0]):
        raise _refuse("Invalid impfuzzy format. The format has to be imports:hash:hash")
    return value


def _vhash(value: str) -> str:
    if "\n" in value:
        raise _refuse(_WRONG_FORMAT)
    return value.lower()


def _ssh_fingerprint(value: str) -> str:
    """``SHA256:<base64 of 32 bytes>``, or an MD5 with or without ``MD5:`` and colons."""
    if value.startswith("SHA256:"):
        valid = _base64_size(value.removeprefix("SHA256:")) == 32
    else:
        digest = value.removeprefix("MD5:").replace(":", "")
        valid = len(digest) == 32 and bool(_HEX.fullmatch(digest))
    if not valid:
        raise _refuse("SSH fingerprint must be in MD5 or SHA256 format.")
    return value


def _base64_size(text: str) -> int:
    try:  # ssh-keygen leaves the padding out
        return len(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
    except ValueError:
        return -1


def _filename_and(hash_type: str) -> Validator:
    """``filename|<hash>``: one line of filename, then the hash as its own type checks it."""

    def digest(value: str) -> str:
        return VALIDATORS[hash_type](value)

    return _pair(_filename, digest)


# -- network ------------------------------------------------------------------------------

_BAD_IP = "IP address has an invalid format."
_BAD_PORT = "Port numbers have to be integers between 1 and 65535."
_DOMAIN = re.compile(r"[a-z0-9.\-_]+\.[a-z0-9\-]{2,}", re.ASCII)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_URL_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?", re.ASCII)
_URL_CHARACTERS = re.compile(r"""[A-Za-z0-9$\-_.+!*'(),{}|\\^~\[\]`<>#%";/?:@&=]+""")


def _address(text: str) -> str:
    """One IP address, IPv6 compressed as ``inet_ntop`` writes it."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _refuse(_BAD_IP) from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:  # PHP's filter refuses zone ids too
            raise _refuse(_BAD_IP)
        if address.ipv4_mapped is not None:
            return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _ip(value: str) -> str:
    """An address or a CIDR block; a /32 (IPv4) or /128 (IPv6) block is its address.

    Host bits are kept (``10.0.0.1/8``): MISP keeps them, and they may be the indicator.
    """
    text, slash, prefix = value.partition("/")
    if not slash:
        return _address(text)
    digits = _whole_number(prefix)
    if digits is None:
        raise _refuse("Invalid CIDR notation value found.")
    address = _address(text)
    version, longest = (6, 128) if ":" in address else (4, 32)
    bits = _whole_number(digits, at_most=longest)
    if bits is None:
        raise _refuse(
            f"Invalid CIDR notation value found, for IPv{version} must be lower or equal {longest}."
        )
    return address if bits == str(longest) else f"{address}/{bits}"


def _port(value: str) -> str:
    port = _whole_number(value, at_most=65535)
    if port is None or port == "0":
        raise _refuse(_BAD_PORT)
    return port


def _ip_port_pipe(value: str) -> str:
    """Write ``ip:port``, ``[v6]:port``, ``v6|port``, ``v6.port``, ``v6 port N``, ``v6pN``,
    ``v6#N`` and (ambiguous, last colon) ``v6:port`` as ``ip|port``, as MISP does."""
    if value.count(":") < 2:
        for separator in (":", "|"):
            if value.find(separator) > 0:
                return value.replace(separator, "|", 1)
        return value
    if value.find("|") <= 0 and value.startswith("[") and "]" in value:
        address, _, rest = value[1:].partition("]")
        return f"{address}|{rest[1:] if rest.startswith(':') else ''}"
    for separator in ("|", ".", " port ", "p", "#"):
        if value.find(separator) > 0:
            return value.replace(separator, "|", 1)
    address, _, port = value.rpartition(":")
    return f"{address}|{port}"


def _host_name(kind: str) -> Validator:
    """A domain or host name, lower-cased, without trailing dots, in punycode if it is not
    ASCII (``müller.de`` is ``xn--mller-kva.de``)."""
    refusal = f'{kind} has an invalid format. Please double check the value or select type "other".'

    def validate(value: str) -> str:
        value = value.lower().strip(".")
        if not _DOMAIN.fullmatch(value):
            value = _punycode(value)
        if not _DOMAIN.fullmatch(value):
            raise _refuse(refusal)
        return value

    return validate


def _punycode(name: str) -> str:
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


_onion_address = _pattern(
    r"(?:[a-z2-7]{16}|[a-z2-7]{56})\.onion",
    message="Onion address has an invalid format.",
    case=_lowercase,
)


def _hostname_port_pipe(value: str) -> str:
    return value.replace(":", "|")


def _email(*, lower: bool) -> Validator:
    """Something, ``@``, something with a dot: MISP's loose rule, since partial addresses
    (``*@evil.com``) are indicators too."""
    pattern = re.compile(r"\S+@.*\..*", re.ASCII)

    def validate(value: str) -> str:
        if lower:
            value = value.lower()
        if not pattern.fullmatch(value):
            raise _refuse(
                "Email address has an invalid format. Please double check the value or "
                'select type "other".'
            )
        return value

    return validate


def _mac(octets: int) -> Validator:
    """A MAC address in any usual notation, stored as lower-case ``aa:bb:cc:dd:ee:ff``."""
    shape = re.compile(rf"[0-9a-f]{{2}}(?::[0-9a-f]{{2}}){{{octets - 1}}}")

    def validate(value: str) -> str:
        digits = re.sub(r"[.:\- ]", "", value.lower())
        value = ":".join(digits[start : start + 2] for start in range(0, len(digits), 2))
        if not shape.fullmatch(value):
            raise _refuse(_WRONG_FORMAT)
        return value

    return validate


def _link(value: str) -> str:
    """An absolute URL, as PHP's ``FILTER_VALIDATE_URL`` sees it: ASCII, a scheme, a host
    (but for ``mailto:``, ``news:`` and ``file:``), a valid host name for http(s)."""
    if not _URL_CHARACTERS.fullmatch(value):
        raise _refuse(_WRONG_FORMAT)
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise _refuse(_WRONG_FORMAT) from None
    scheme = parts.scheme.lower()
    if not scheme or (not parts.netloc and scheme not in ("mailto", "news", "file")):
        raise _refuse(_WRONG_FORMAT)
    if scheme in ("http", "https") and not _is_url_host(host):
        raise _refuse(_WRONG_FORMAT)
    return value


def _is_url_host(host: str) -> bool:
    if _URL_HOST.fullmatch(host):
        return True
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _as_number(value: str) -> str:
    """``AS1234``, ``1234`` or asdot ``1.10`` (65546), stored as the bare number."""
    if value[:2].upper() == "AS":
        value = value[2:]
    high, dot, low = value.partition(".")
    first, second = _whole_number(high, at_most=65535), _whole_number(low, at_most=4294967295)
    if dot and first is not None and second is not None:
        value = str(int(first) * 65536 + int(second))
    number = _whole_number(value, at_most=4294967295)
    if number is None:
        raise _refuse("AS number have to be integer between 1 and 4294967295")
    return number


# -- numbers, money, dates ----------------------------------------------------------------


def _numeric(value: str) -> str:
    """A number as PHP's ``is_numeric`` reads it (sign, decimals, exponent), kept as written."""
    if not _NUMERIC.fullmatch(value):
        raise _refuse(_WRONG_FORMAT)
    return value


def _digits_only(value: str) -> str:
    """A card or BIN number: spaces and dashes dropped."""
    return _numeric(re.sub(r"[^0-9]+", "", value))


def _phone(value: str) -> str:
    """``0049 (0)30-123`` is ``+4930123``: international prefix as ``+``, only digits."""
    if value.startswith("00"):
        value = "+" + value[2:]
    return _numeric(re.sub(r"[^+0-9]+", "", value.replace("(0)", "")))


def _alphanumeric(value: str) -> str:
    if not re.fullmatch(r"[a-zA-Z0-9]+", value):
        raise _refuse(_WRONG_FORMAT)
    return value


def _bank_code(value: str) -> str:
    """An IBAN or BIC in upper case, spaces and punctuation dropped."""
    return _alphanumeric(re.sub(r"[^0-9A-Z]+", "", value.upper()))


def _integer(value: str) -> str:
    sign, digits = ("-", value[1:]) if value.startswith("-") else ("", value.removeprefix("+"))
    number = _whole_number(digits)
    if number is None:
        raise _refuse("The value has to be an integer value.")
    return number if number == "0" else sign + number


def _whole(value: str) -> str:
    number = _whole_number(value)
    if number is None:
        raise _refuse("The value has to be a whole number greater or equal 0.")
    return number


_BOOLEANS = {"1": "1", "true": "1", "0": "0", "false": "0"}


def _boolean(value: str) -> str:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise _refuse(_WRONG_FORMAT) from None


def _datetime(value: str) -> str:
    """ISO 8601, stored as MISP writes it (``2024-01-02T03:04:05.000000+0000``); a time
    without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _refuse("Datetime has to be in the ISO 8601 format.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f%z")


# -- the table ----------------------------------------------------------------------------


def _table(rows: Iterable[tuple[Validator, tuple[str, ...]]]) -> Mapping[str, Validator]:
    table: dict[str, Validator] = {}
    for validator, types in rows:
        for type_ in types:
            if type_ in table:
                raise ValueError(f"{type_!r} has two validators")
            table[type_] = validator
    return MappingProxyType(table)


_FILENAME_HASHES = (
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512/224", "sha512/256",
    "sha3-224", "sha3-256", "sha3-384", "sha3-512", "authentihash", "imphash", "impfuzzy",
    "pehash", "ssdeep", "tlsh", "vhash",
)  # fmt: skip

VALIDATORS: Mapping[str, Validator] = _table(
    [
        (_hex(32), (
            "md5", "imphash", "ja3-fingerprint-md5", "hassh-md5", "hasshserver-md5", "dom-hash",
        )),
        (_hex(40), ("sha1", "git-commit-id")),
        (_hex(40, message=_PEHASH), ("pehash",)),
        (_hex(56), ("sha224", "sha512/224", "sha3-224")),
        (_hex(62), ("jarm-fingerprint",)),
        (_hex(64), ("sha256", "sha512/256", "sha3-256", "authentihash")),
        (_hex(96), ("sha384", "sha3-384")),
        (_hex(128), ("sha512", "sha3-512")),
        (_fingerprint(32), ("x509-fingerprint-md5",)),
        (_fingerprint(40), ("x509-fingerprint-sha1",)),
        (_fingerprint(64), ("x509-fingerprint-sha256",)),
        (_cdhash, ("cdhash",)),
        (_ssdeep, ("ssdeep",)),
        (_tlsh, ("tlsh",)),
        (_telfhash, ("telfhash",)),
        (_impfuzzy, ("impfuzzy",)),
        (_vhash, ("vhash",)),
        (_ssh_fingerprint, ("ssh-fingerprint",)),
        *((_filename_and(hash_), (f"filename|{hash_}",)) for hash_ in _FILENAME_HASHES),
        (_filename_and("md5"), ("malware-sample",)),
        (_filename, ("filename", "attachment")),
        (_ip, ("ip-src", "ip-dst")),
        (_pair(_address, _port, prepare=_ip_port_pipe), ("ip-src|port", "ip-dst|port")),
        (_host_name("Domain"), ("domain",)),
        (_host_name("Hostname"), ("hostname",)),
        (_pair(_host_name("Domain"), _address), ("domain|ip",)),
        (_pair(_host_name("Hostname"), _port, prepare=_hostname_port_pipe), ("hostname|port",)),
        (_onion_address, ("onion-address",)),
        (_link, ("link",)),
        (_port, ("port",)),
        (_as_number, ("AS",)),
        (_mac(6), ("mac-address",)),
        (_mac(8), ("mac-eui-64",)),
        (_email(lower=True), (
            "email", "email-src", "email-dst", "target-email", "whois-registrant-email",
        )),
        (_email(lower=False), ("eppn", "dns-soa-email", "jabber-id")),
        (_http_method, ("http-method",)),
        (_cve, ("vulnerability",)),
        (_cwe, ("weakness",)),
        (_hex_string, ("hex",)),
        (_alphanumeric, ("btc", "dash", "xmr")),
        (_bank_code, ("iban", "bic")),
        (_numeric, ("float", "bank-account-nr", "aba-rtn")),
        (_digits_only, ("bin", "cc-number")),
        (_phone, ("phone-number", "prtn", "whois-registrant-phone")),
        (_integer, ("integer",)),
        (_whole, ("counter", "size-in-bytes")),
        (_boolean, ("boolean",)),
        (_datetime, ("datetime",)),
        (_service_name, ("windows-service-name", "windows-service-displayname")),
        (_cortex, ("cortex",)),
        (_uuid, ("uuid",)),
        (_lowercase, ("anonymised",)),
        (_pair(_line, _line), ("regkey|value",)),
        (_line, (
            "url", "uri", "user-agent", "regkey", "pdb", "named pipe", "windows-scheduled-task",
            "target-user", "target-machine", "target-org", "target-location", "target-external",
            "campaign-name", "campaign-id", "threat-actor", "malware-type", "email-subject",
            "email-dst-display-name", "email-src-display-name", "email-reply-to",
            "email-x-mailer", "email-mime-boundary", "email-thread-index", "email-message-id",
            "whois-registrant-name", "whois-registrant-org", "whois-registrar",
            "whois-creation-date", "date-of-birth", "place-of-birth",
            "gender", "passport-number", "passport-country", "passport-expiration",
            "redress-number", "nationality", "visa-number", "issue-date-of-the-visa",
            "primary-residence", "country-of-residence", "special-service-request",
            "frequent-flyer-number", "travel-details", "payment-details",
            "place-port-of-original-embarkation", "place-port-of-clearance",
            "place-port-of-onward-foreign-destination", "passenger-name-record-locator-number",
            "github-username", "github-repository", "github-organisation", "twitter-id", "dkim",
            "dkim-signature", "favicon-mmh3", "chrome-extension-id", "edge-extension-id",
            "mobile-application-id", "azure-application-id",
        )),
        (_text, (
            "comment", "text", "other", "cpe", "mutex", "process-state", "snort", "suricata",
            "bro", "zeek", "community-id", "pattern-in-file", "pattern-in-traffic",
            "pattern-in-memory", "filename-pattern", "pgp-public-key", "pgp-private-key",
            "yara", "stix2-pattern", "sigma", "gene", "kusto-query", "mime-type",
            "identity-card-number", "cookie", "email-attachment", "email-body", "email-header",
            "first-name", "middle-name", "last-name", "full-name",
        )),
    ]
)  # fmt: skip
"""Which rule checks each type's value: every type of ``describeTypes``, once."""
