"""The release record as a PDF, checked page by page as images (issue #12).

`evledger report ... -o record.pdf` renders a verified dossier (the demo's sealed release)
with WeasyPrint. Each page is drawn to PNG with pypdfium2 (no system tools needed) and its
text extracted: there must be several pages, none blank, nothing drawn in the side
margins (every table fits A4 and Letter), the header and footer with the document id
and "Page N of M" on every page, and no Python value anywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.dossier_cmd import ReportFormat, load_and_verify, report_format
from cli.main import app
from ledger.errors import LedgerError
from ledger.query.report import document_id
from ledger.query.report_pdf import html_to_pdf

FIXTURE = Path(__file__).resolve().parents[1] / "integration" / "fixtures" / "pre_issue9"
DOSSIER = FIXTURE / "sealed-release.dossier.json"
PRODUCT, VERSION = "ivd-analyzer", "2.4.20261204201839"
POINTS = {"a4": (595, 842), "letter": (612, 792)}  # page size in PostScript points
SCALE = 1.5  # pixels per point in the page images
MARGIN_MM = 15  # the record's side margins; the strip checked is a little narrower
runner = CliRunner()


def _report(out: Path, *extra: str) -> None:
    result = runner.invoke(
        app,
        ["report", PRODUCT, VERSION, "-o", str(out), "--key", str(FIXTURE / "ledger.pub"),
         "--dossier", str(DOSSIER), *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def pages(pdf: bytes, directory: Path) -> list[tuple[Image.Image, str, tuple[float, float]]]:
    """Each page as an image (also saved as page-N.png under `directory`), its text and its size."""
    document = pdfium.PdfDocument(pdf)
    shown = []
    for number, page in enumerate(document, 1):
        image = page.render(scale=SCALE).to_pil().convert("L")
        image.save(directory / f"page-{number}.png")
        shown.append((image, page.get_textpage().get_text_range(), page.get_size()))
    return shown


def ink_in_side_margins(image: Image.Image) -> bool:
    """Whether anything is drawn in the left or right margin strip (all of the page's height)."""
    strip = round((MARGIN_MM - 3) / 25.4 * 72 * SCALE)
    width, height = image.size
    for box in ((0, 0, strip, height), (width - strip, 0, width, height)):
        darkest, _ = image.crop(box).getextrema()
        if darkest < 245:
            return True
    return False


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_every_page_fits_and_carries_header_footer_and_document_id(paper: str, tmp_path: Path) -> None:
    out = tmp_path / "record.pdf"
    _report(out, "--paper", paper)
    shown = pages(out.read_bytes(), tmp_path)
    ident = document_id(*load_and_verify(DOSSIER, FIXTURE / "ledger.pub"))
    assert len(shown) > 1
    for number, (image, text, size) in enumerate(shown, 1):
        assert tuple(round(x) for x in size) == POINTS[paper]
        darkest, _ = image.getextrema()
        assert darkest < 100, f"page {number} is blank"
        assert not ink_in_side_margins(image), f"page {number} draws outside the printable area"
        assert f"Page {number} of {len(shown)}" in text
        assert f"Document ID {ident}" in text
        assert f"Release record: {PRODUCT} {VERSION}" in text
        for python in ("{'", "True", "False", "None"):
            assert python not in text, (number, python)
    whole = "\n".join(text for _, text, _ in shown)
    assert "ivd-analyzer-release-policy" in whole
    assert "findings.max-open" in whole
    assert "production" in whole


def test_the_margin_check_sees_a_table_that_does_not_fit(tmp_path: Path) -> None:
    # Without fixed layout and breakable digests a long digest pushes a table off the page.
    wide = "<table><tr><td style='white-space: nowrap'>" + "sha256:" + "ab" * 120 + "</td></tr></table>"
    style = "<style>@page { size: A4; margin: 20mm 15mm; }</style>"
    (image, _, _), *_ = pages(html_to_pdf(f"<html><head>{style}</head><body>{wide}</body></html>"), tmp_path)
    assert ink_in_side_margins(image)


def test_the_format_follows_the_suffix_unless_chosen(tmp_path: Path) -> None:
    assert report_format(Path("r.pdf"), None) is ReportFormat.PDF
    assert report_format(Path("r.PDF"), None) is ReportFormat.PDF
    assert report_format(Path("r.html"), None) is ReportFormat.HTML
    assert report_format(Path("r.pdf"), ReportFormat.HTML) is ReportFormat.HTML
    out = tmp_path / "record.out"
    _report(out, "--format", "pdf")
    assert out.read_bytes().startswith(b"%PDF-")
    html = tmp_path / "record.pdf"
    _report(html, "--format", "html")
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_without_pango_a_pdf_fails_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # `import weasyprint` now fails, as without Pango
    with pytest.raises(LedgerError, match=r"libpango-1\.0-0"):
        html_to_pdf("<p>x</p>")
    result = runner.invoke(
        app,
        ["report", PRODUCT, VERSION, "-o", str(tmp_path / "r.pdf"), "--key", str(FIXTURE / "ledger.pub"),
         "--dossier", str(DOSSIER)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "cannot write a PDF" in result.output
    assert "libpango-1.0-0" in result.output
    assert "Traceback" not in result.output
