"""The files of a ReproSchema bundle, taken from a zip or a JSON document, with the limits
that keep a hostile upload harmless.

Two shapes are read:

- ``application/zip``: the JSON-LD files as ReproSchema lays them out (``activities/PHQ-9/
  PHQ9_schema``, ``activities/PHQ-9/items/phq9_1``...). File names need no extension: every
  file is tried as JSON, and those that are not JSON are kept only as text (landing pages)
  and otherwise ignored.
- ``application/json``: ``{"root": "<path>", "files": {"<path>": <JSON-LD document, or a
  string for a text file>, ...}}``; or one self-contained protocol or activity document
  (its activities and items embedded), read as if it were the only file of a bundle.

Limits: at most :data:`MAX_FILES` files and :data:`MAX_BYTES` in all, unpacked (counted
while unpacking, so a zip that lies about its sizes stops there too); paths stay inside the
bundle (no ``..``, no absolute path; backslashes read as slashes). Breaking one raises
:class:`BundleError`.
"""

from __future__ import annotations

import io
import json
import lzma
import posixpath
import re
import zipfile
import zlib
from typing import Any

from tessera.common.problems import Problem

__all__ = [
    "JSON_TYPES",
    "MAX_BYTES",
    "MAX_FILES",
    "ZIP_TYPES",
    "Bundle",
    "BundleError",
    "load",
    "pack_zip",
]

MAX_FILES = 2_000
MAX_BYTES = 20 * 1024 * 1024
ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})
JSON_TYPES = frozenset({"application/json", "application/ld+json"})
SINGLE_DOCUMENT = "document.jsonld"
"""The path a lone JSON-LD document gets (relative references resolve against it)."""

_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


class BundleError(Problem):
    """The upload is not a bundle that can be read: ``field`` names where (``body``,
    ``root``, a path in the bundle and the term in it)."""

    status = 422
    code = "invalid_bundle"
    title = "The ReproSchema bundle cannot be read"

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(
            message,
            errors=[{"field": field, "in": "body", "message": message, "type": "invalid_bundle"}],
        )
        self.message = message
        self.field = field


class Bundle:
    """Files by path (``a/b/c``, relative, normalised); JSON is parsed once, on demand."""

    def __init__(
        self,
        files: dict[str, bytes],
        *,
        root: str | None = None,
        documents: dict[str, Any] | None = None,
    ) -> None:
        self._raw = dict(files)
        self._parsed: dict[str, Any] = dict(documents or {})
        self.root = root

    @property
    def paths(self) -> list[str]:
        return [*self._raw, *(p for p in self._parsed if p not in self._raw)]

    def __contains__(self, path: object) -> bool:
        return path in self._raw or path in self._parsed

    def json(self, path: str) -> Any:
        """The file's JSON value, or ``None`` when it is missing or not JSON."""
        if path not in self._parsed:
            self._parsed[path] = _parse(self._raw[path]) if path in self._raw else None
        return self._parsed[path]

    def text(self, path: str) -> str | None:
        raw = self._raw.get(path)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_path(name: str, *, what: str) -> str:
    """``name`` as a path inside the bundle; :class:`BundleError` when it leaves it."""
    name = name.replace("\\", "/")  # zips made on Windows
    if not name or "\x00" in name or name.startswith("/") or _DRIVE.match(name):
        raise BundleError(f"{what} is not a relative path inside the bundle", field=name or what)
    if ".." in name.split("/"):
        raise BundleError(f"{what} leaves the bundle (..)", field=name)
    path = posixpath.normpath(name)
    if path in ("", "."):
        raise BundleError(f"{what} is not a file path", field=name)
    return path


def load(data: bytes, *, content_type: str, root: str | None = None) -> Bundle:
    """The bundle in ``data``, sent as ``content_type`` (zip or JSON)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if len(data) > MAX_BYTES:
        raise BundleError(f"the upload is larger than {MAX_BYTES // (1024 * 1024)} MB")
    if media in ZIP_TYPES:
        bundle = _from_zip(data)
    elif media in JSON_TYPES:
        bundle = _from_json(data)
    else:
        raise BundleError(
            f"content type {content_type!r} is not read: send application/zip or application/json",
            field="content-type",
        )
    if root is not None:
        path = safe_path(root, what=f"root {root!r}")
        if path not in bundle:
            raise BundleError(f"the root {root!r} is not a file of the bundle", field="root")
        bundle.root = path
    return bundle


def _from_zip(data: bytes) -> Bundle:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BundleError(f"not a zip file ({exc})") from exc
    entries = [info for info in archive.infolist() if not info.is_dir()]
    if len(entries) > MAX_FILES:
        raise BundleError(f"the zip holds {len(entries)} files; at most {MAX_FILES} are read")
    if sum(info.file_size for info in entries) > MAX_BYTES:
        raise BundleError(f"the zip unpacks to more than {MAX_BYTES // (1024 * 1024)} MB")
    files: dict[str, bytes] = {}
    total = 0
    for info in entries:
        path = safe_path(info.filename, what=f"zip entry {info.filename!r}")
        if path in files:
            raise BundleError(f"zip entry {path!r} appears twice", field=path)
        if info.flag_bits & 0x1:
            raise BundleError(f"zip entry {path!r} is encrypted", field=path)
        try:
            with archive.open(info) as member:
                raw = member.read(MAX_BYTES - total + 1)
        except (
            zipfile.BadZipFile,
            zlib.error,
            lzma.LZMAError,
            EOFError,
            OSError,
            NotImplementedError,
            RuntimeError,
            ValueError,
        ) as exc:
            raise BundleError(f"zip entry {path!r} cannot be unpacked ({exc})", field=path) from exc
        total += len(raw)
        if total > MAX_BYTES:
            raise BundleError(f"the zip unpacks to more than {MAX_BYTES // (1024 * 1024)} MB")
        files[path] = raw
    return Bundle(files)


def _from_json(data: bytes) -> Bundle:
    value = _parse(data)
    if value is None:
        raise BundleError("the body is not JSON (UTF-8)")
    if not isinstance(value, dict):
        raise BundleError(
            'a JSON bundle is an object: {"root": ..., "files": {...}}, or one JSON-LD document'
        )
    if "@context" in value or "files" not in value:
        return Bundle({}, root=SINGLE_DOCUMENT, documents={SINGLE_DOCUMENT: value})
    files, root = value["files"], value.get("root")
    if not isinstance(files, dict):
        raise BundleError("files is an object: path -> document", field="files")
    if len(files) > MAX_FILES:
        raise BundleError(
            f"the bundle holds {len(files)} files; at most {MAX_FILES} are read", field="files"
        )
    raw: dict[str, bytes] = {}
    documents: dict[str, Any] = {}
    for name, content in files.items():
        path = safe_path(name, what=f"file {name!r}")
        if path in raw or path in documents:
            raise BundleError(f"file {path!r} appears twice", field=f"files.{name}")
        if isinstance(content, str):
            raw[path] = content.encode("utf-8")
        elif isinstance(content, dict | list):
            documents[path] = content
        else:
            raise BundleError(
                f"file {name!r} is neither a JSON-LD document nor a text", field=f"files.{name}"
            )
    if not isinstance(root, str):
        raise BundleError("root names the protocol or activity to import", field="root")
    path = safe_path(root, what=f"root {root!r}")
    if path not in raw and path not in documents:
        raise BundleError(f"the root {root!r} is not one of the files", field="root")
    return Bundle(raw, root=path, documents=documents)


def pack_zip(files: dict[str, bytes]) -> bytes:
    """A zip of ``files`` (deflated, with a fixed date: the same files give the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()
