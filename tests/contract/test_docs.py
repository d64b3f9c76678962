"""The README and docs/ link only to files of this repository, and every such link resolves.

A new contributor's door is the README: nothing it or docs/*.md links to may be outside the
checkout (a `../` that climbs out of the repository, an absolute path, a `file:` URL) or
missing, and an anchor must name a heading of its target. http(s) links may only point at the
machine the suite runs on (`localhost`), not at public sites.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
PUBLIC_SITES_ALLOWED: set[str] = set()  # add a host here only when a link is unavoidable

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?^ {0,3}\1[^\n]*$", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*)>")
HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
BARE_URL = re.compile(r"(?<![\w/<(])(?:https?|file)://[^\s<>()\]]+", re.I)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def prose(text: str) -> str:
    """The text with code blocks, code spans and comments taken out (no links live there)."""
    return CODE_SPAN.sub("", FENCE.sub("", COMMENT.sub("", text)))


def links(text: str) -> list[str]:
    body = prose(text)
    found = [m.group(1) for m in INLINE.finditer(body)]
    found += [m.group(1) for m in REFERENCE.finditer(body)]
    found += [m.group(1) for m in AUTOLINK.finditer(body)]
    found += [m.group(1) for m in HTML.finditer(body)]
    without_targets = AUTOLINK.sub("", INLINE.sub("", body))
    found += [m.group(0).rstrip(".,;:") for m in BARE_URL.finditer(without_targets)]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps only its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for match in HEADING.finditer(FENCE.sub("", COMMENT.sub("", path.read_text()))):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def link_problem(document: Path, target: str) -> str | None:
    """Why ``target``, linked from ``document``, is not allowed; None when it is fine."""
    if not target:
        return "empty link"
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        host = (parts.hostname or "").lower()
        if host in LOCAL_HOSTS or host in PUBLIC_SITES_ALLOWED:
            return None
        return f"{target}: links to a public site (keep the docs self-contained)"
    if parts.scheme or parts.netloc or re.match(r"^[A-Za-z]:[\\/]", target):
        return f"{target}: points outside the repository"
    path, fragment = unquote(parts.path), unquote(parts.fragment)
    if path.startswith(("/", "\\", "~")):
        return f"{target}: absolute path (link relative to {document.name} instead)"
    resolved = (document.parent / path).resolve() if path else document
    if not resolved.is_relative_to(ROOT):
        return f"{target}: leaves the repository"
    if not resolved.exists():
        return f"{target}: no such file in the repository"
    if fragment and resolved.suffix == ".md" and fragment.lower() not in anchors(resolved):
        return f"{target}: {resolved.relative_to(ROOT)} has no heading #{fragment}"
    return None


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_to_a_file_inside_the_repository(document: Path) -> None:
    found = links(document.read_text())
    problems = [p for t in found if (p := link_problem(document, t)) is not None]
    assert problems == [], f"{document.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_readme_leads_to_every_document_in_docs() -> None:
    linked = {
        (ROOT / urlsplit(t).path).resolve()
        for t in links((ROOT / "README.md").read_text())
        if not urlsplit(t).scheme
    }
    missing = [p.name for p in DOCUMENTS[1:] if p.resolve() not in linked]
    assert missing == [], f"README.md does not link docs/{', docs/'.join(missing)}"


def test_the_checker_refuses_links_out_of_the_repository_and_ignores_code(tmp_path: Path) -> None:
    readme = ROOT / "README.md"
    text = """
[design](../shared/DESIGN.md) [style](/work/shared/STYLE.md) [etc](file:///etc/passwd)
[site](https://example.org/page) <https://example.org> see https://example.org/x.
[gone](docs/nothing-here.md) [bad anchor](docs/architecture.md#no-such-heading)
[ok](docs/architecture.md#events) [ok](#documentation) <http://localhost:8080/auth/docs>
[ref]: ../../elsewhere.md
`[in code](../outside.md)`

```sh
[in a block](../../outside.md) https://example.org/in-a-block
```
"""
    problems = sorted(
        p.split(":")[0] for t in links(text) if (p := link_problem(readme, t)) is not None
    )
    assert problems == sorted(
        [
            "../shared/DESIGN.md",
            "/work/shared/STYLE.md",
            "file",
            "https",
            "https",
            "https",
            "docs/nothing-here.md",
            "docs/architecture.md#no-such-heading",
            "../../elsewhere.md",
        ]
    )


def test_github_anchors_drop_punctuation_and_code_marks() -> None:
    assert slug("auth.user.registered.v1") == "authuserregisteredv1"
    assert slug("Set-up: two commands") == "set-up-two-commands"
    assert slug("The shared kernel (`libs/common`)") == "the-shared-kernel-libscommon"
