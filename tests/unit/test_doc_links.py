"""The documentation stands on its own: every relative link resolves inside the repository.

A user's clone holds README.md, docs/, schemas/ and benchmarks/ and nothing beside them, so
a relative link must name a file of the repository and, when it names a heading
(`file.md#anchor`), a heading that file has, spelled as GitHub spells its anchors. The
documents must not point at the team's working notes outside the repository either.
Links inside code (fenced blocks and `code spans`) are text, not links, and are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/*.md", "schemas/*.md", "benchmarks/RESULTS.md")
# What a clone does not have: the sibling checkout of the team's notes and the design file in it.
OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md|DESIGN §")

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:[^>]*\s)?(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
_INLINE_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:|//")
_LINK_TEXT = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def documents(root: Path = ROOT) -> list[Path]:
    """Every document whose links are checked, in a stable order."""
    return sorted({path for pattern in DOCUMENTS for path in root.glob(pattern)})


def outside_fences(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line of a markdown text that is not inside a fenced code block."""
    fence = ""
    for number, line in enumerate(text.splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
        elif opened:
            fence = opened.group(1)
        else:
            yield number, line


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lowercased, punctuation dropped, spaces as hyphens."""
    text = _LINK_TEXT.sub(r"\1", heading).replace("`", "").strip().lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file: its headings' slugs (repeats numbered -1, -2…) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in outside_fences(path.read_text(encoding="utf-8")):
        found.update(_HTML_ANCHOR.findall(line))
        heading = _HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every inline, image and reference link of a markdown file."""
    for number, raw in outside_fences(path.read_text(encoding="utf-8")):
        line = _CODE_SPAN.sub("", raw)
        for match in [*_INLINE_LINK.finditer(line), *_REFERENCE.finditer(line)]:
            yield number, match.group(1).removeprefix("<").removesuffix(">")


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `path` that names no file of the repository, or no heading of its file."""
    problems: list[str] = []
    where = path.relative_to(root)
    for number, target in links(path):
        if _SCHEME.match(target):
            continue  # http:, https:, mailto: and the like leave the repository on purpose
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{where}:{number}: {target} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{where}:{number}: {target} names a file that does not exist")
        elif anchor and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
            problems.append(f"{where}:{number}: {target} names a heading {resolved.name} does not have")
    return problems


def outside_references(path: Path, root: Path = ROOT) -> list[str]:
    """Each line of `path` that points at the team's notes outside the repository."""
    return [
        f"{path.relative_to(root)}:{number}: {line.strip()[:120]}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]


def test_the_documents_are_there() -> None:
    names = {str(path.relative_to(ROOT)) for path in documents()}
    wanted = ("README.md", "docs/architecture.md", "docs/formats.md", "docs/http-api.md", "docs/cli.md")
    assert names.issuperset(wanted)


@pytest.mark.parametrize("path", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


@pytest.mark.parametrize("path", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_document_points_outside_the_repository(path: Path) -> None:
    assert outside_references(path) == []


# Spelled in two parts, so that a search of the code for section references does not find it.
PLANTED = "../shared/DESIGN" + ".md §3."


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    # The checks above pass only if they can fail: a planted case of each is caught.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# Keys\n\n## The `evledger verify` command\n\n## Keys\n\n```sh\n# Not a heading\n```\n",
        encoding="utf-8",
    )
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/a.md#keys) [ok](docs/a.md#keys-1) [ok](docs/a.md#the-evledger-verify-command)\n"
        "[ok](https://example.com/x.md) [ok](#top) `[code](missing.md)`\n"
        "[gone](docs/missing.md) [no heading](docs/a.md#not-a-heading) [out](../elsewhere.md)\n"
        f"See {PLANTED}\n\n# Top\n",
        encoding="utf-8",
    )
    assert anchors(tmp_path / "docs" / "a.md") == {"keys", "keys-1", "the-evledger-verify-command"}
    assert broken_links(readme, tmp_path) == [
        "README.md:3: docs/missing.md names a file that does not exist",
        "README.md:3: docs/a.md#not-a-heading names a heading a.md does not have",
        "README.md:3: ../elsewhere.md leaves the repository",
    ]
    assert outside_references(readme, tmp_path) == [f"README.md:4: See {PLANTED}"]
