"""The documentation lives in the repository and stays true to it.

A clone must be able to follow every reference: no file cites a design or style document kept
outside the repository, a path above it, or a bare section number of an unnamed document; every
``docs/...`` path a file cites exists, and a cited section (``docs/architecture.md, 'Money
path'``) is a heading of that file; every relative link between the documents resolves. Every
Mermaid block under ``docs/`` starts with a diagram type Mermaid knows and closes what it opens,
so the code hosts render it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Documents that are not in the repository, paths above it, and "§N" without a document.
OUTSIDE = re.compile(r"\b(?:DESIGN|STYLE)\.md\b|\.\./shared\b|§\s*\d")
# A docs/ path, not part of a URL or of a longer path ("https://host/docs/...").
DOCS_PATH = re.compile(r"(?<![\w./-])docs/[\w./-]*[\w/]")
# The sections cited after a path: ", 'Money path'", possibly across a wrapped comment line.
SECTION = re.compile(r",\s*(?:#\s*)?'([^'\n]+)'")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
MERMAID_BLOCK = re.compile(r"^```mermaid\n(.*?)^```", re.M | re.S)

DIAGRAM_TYPES = frozenset(
    {
        "architecture-beta",
        "block-beta",
        "C4Component",
        "C4Container",
        "C4Context",
        "C4Deployment",
        "C4Dynamic",
        "classDiagram",
        "classDiagram-v2",
        "erDiagram",
        "flowchart",
        "gantt",
        "gitGraph",
        "graph",
        "journey",
        "kanban",
        "mindmap",
        "packet-beta",
        "pie",
        "quadrantChart",
        "requirementDiagram",
        "sankey-beta",
        "sequenceDiagram",
        "stateDiagram",
        "stateDiagram-v2",
        "timeline",
        "xychart-beta",
    }
)
FLOWCHART_DIRECTIONS = frozenset({"TB", "TD", "BT", "RL", "LR"})
# Statements that open a block closed by `end`.
SEQUENCE_OPENERS = frozenset({"alt", "box", "break", "critical", "loop", "opt", "par", "rect"})


@dataclass(frozen=True)
class Citation:
    path: str
    sections: tuple[str, ...]


def repository_files() -> list[Path]:
    """Tracked files and new ones not ignored: what a clone has once they are committed."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def text_of(path: Path) -> str | None:
    """The file as text; None for binary files (model weights, images)."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def repository_texts() -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in repository_files():
        text = text_of(path)
        if text is not None:
            texts[path.relative_to(ROOT).as_posix()] = text
    return texts


def citations(text: str) -> list[Citation]:
    """Every docs/ path in ``text`` with the sections cited right after it."""
    found = []
    for match in DOCS_PATH.finditer(text):
        sections = []
        position = match.end()
        while (section := SECTION.match(text, position)) is not None:
            sections.append(section.group(1))
            position = section.end()
        found.append(Citation(match.group(0), tuple(sections)))
    return found


def slug(heading: str) -> str:
    """The anchor code hosts give a Markdown heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(markdown: str) -> set[str]:
    inside_code = False
    found = set()
    for line in markdown.splitlines():
        if line.startswith("```"):
            inside_code = not inside_code
        elif not inside_code and (match := re.match(r"#{1,6} (.+)", line)):
            found.add(match.group(1).strip())
    return found


def mermaid_problems(block: str) -> list[str]:
    """Why Mermaid would refuse ``block``, as far as its header and block structure tell."""
    lines = [line.strip() for line in block.splitlines()]
    if lines and lines[0] == "---":  # front matter (title, config)
        lines = lines[lines.index("---", 1) + 1 :] if "---" in lines[1:] else []
    body = [line for line in lines if line and not line.startswith("%%")]
    if not body:
        return ["empty diagram"]
    kind, *rest = body[0].split()
    if kind not in DIAGRAM_TYPES:
        return [f"unknown diagram type {kind!r}"]
    problems = []
    if kind in {"flowchart", "graph"} and rest and rest[0] not in FLOWCHART_DIRECTIONS:
        problems.append(f"unknown flowchart direction {rest[0]!r}")
    if kind in {"flowchart", "graph", "sequenceDiagram"}:
        openers = {"subgraph"} if kind != "sequenceDiagram" else SEQUENCE_OPENERS
        depth = 0
        for line in body[1:]:
            word = line.split()[0]
            if word in openers:
                depth += 1
            elif word == "end":
                depth -= 1
                if depth < 0:
                    problems.append("'end' without an open block")
                    depth = 0
        if depth:
            problems.append(f"{depth} block(s) not closed by 'end'")
    else:  # entities, states, classes: `NAME {` ... `}`; a relationship's `o{` opens nothing
        unquoted = [re.sub(r'"[^"]*"', "", line).strip() for line in body[1:]]
        relation = re.compile(r"--|\.\.")
        opened = sum(line.endswith("{") and not relation.search(line) for line in unquoted)
        if opened != sum(line == "}" for line in unquoted):
            problems.append("unbalanced braces")
    return problems


def mermaid_blocks() -> list[tuple[str, str]]:
    """(file#index, block) of every Mermaid block under docs/."""
    return [
        (f"{path.relative_to(ROOT).as_posix()}#{index}", block)
        for path in sorted(DOCS.rglob("*.md"))
        for index, block in enumerate(MERMAID_BLOCK.findall(path.read_text()))
    ]


def test_nothing_cites_a_document_outside_the_repository() -> None:
    offending = [
        f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
        for name, text in repository_texts().items()
        for match in OUTSIDE.finditer(text)
    ]
    assert not offending, "cite docs/ inside the repository instead:\n" + "\n".join(offending)


def test_every_cited_docs_path_and_section_exists() -> None:
    missing = []
    cited = 0
    for name, text in repository_texts().items():
        for citation in citations(text):
            cited += 1
            target = ROOT / citation.path
            if not target.exists():
                missing.append(f"{name}: {citation.path} does not exist")
                continue
            known = headings(target.read_text()) if target.suffix == ".md" else set()
            missing += [
                f"{name}: {citation.path} has no section {section!r}"
                for section in citation.sections
                if section not in known
            ]
    assert cited, "no file cites docs/: the scan itself is broken"
    assert not missing, "\n".join(missing)


def test_links_between_the_documents_resolve() -> None:
    broken = []
    for page in sorted(DOCS.rglob("*.md")):
        for target in MARKDOWN_LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # an external URL
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and anchor not in {slug(h) for h in headings(linked.read_text())}:
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_architecture_document_has_its_diagrams() -> None:
    kinds = {block.split()[0] for name, block in mermaid_blocks() if "architecture" in name}
    assert {"sequenceDiagram", "stateDiagram-v2", "erDiagram", "flowchart"} <= kinds


@pytest.mark.parametrize(
    "block", [pytest.param(block, id=where) for where, block in mermaid_blocks()]
)
def test_each_mermaid_block_parses_as_a_known_diagram(block: str) -> None:
    assert mermaid_problems(block) == []


def test_the_checks_catch_what_they_are_for() -> None:
    # The scanners on samples of what they must find, so a broken pattern cannot pass silently.
    assert OUTSIDE.search("the rules of " + "DESIGN" + ".md " + chr(0xA7) + "4")
    assert OUTSIDE.search("see ../" + "shared/reference/tgi-openapi.json")
    wrapped = "Why:\ndocs/architecture.md, 'The method',\n    # 'Units of work'. More."
    assert citations(wrapped) == [Citation("docs/architecture.md", ("The method", "Units of work"))]
    assert citations("https://example.org/docs/page and /docs") == []
    assert slug("Invariants and `tandem ledger verify`") == "invariants-and-tandem-ledger-verify"
    assert mermaid_problems("graf LR\n  a --> b") == ["unknown diagram type 'graf'"]
    assert mermaid_problems("flowchart LR\n  subgraph s\n  a --> b") == [
        "1 block(s) not closed by 'end'"
    ]
    assert mermaid_problems("sequenceDiagram\n  alt x\n  a->>b: m\n  end\n  end") == [
        "'end' without an open block"
    ]
    assert mermaid_problems('erDiagram\n  A ||--o{ B : has\n  A {\n    text n "a } b"\n') == [
        "unbalanced braces"
    ]
