"""The release record as a PDF: the HTML of `ledger.query.report` laid out on pages by WeasyPrint.

WeasyPrint (a maintained HTML/CSS-to-PDF library) implements the CSS paged media the
record's HTML uses: page size, margins, the header and footer boxes with
"Page N of M". It needs the Pango text library at run time; it is imported only
when a PDF is asked for, so the CLI starts without it, and an installation
without Pango fails with a clear error naming what to install, not a traceback.
"""

from __future__ import annotations

import warnings

from ledger.errors import LedgerError

PANGO_HINT = (
    "install Pango and a font (Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0 "
    "fonts-dejavu-core; macOS: brew install pango), or write HTML with --format html"
)


def html_to_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML page (the release record).

    Nothing is fetched: every URL scheme is refused, so a location quoted in evidence can
    load nothing. LedgerError (exit 2) naming what to install when WeasyPrint cannot load Pango.
    Precondition: `html` needs no external resource.
    """
    try:
        with warnings.catch_warnings():
            # An advisory to the packager (the Dockerfile installs HarfBuzz-Subset), not to users.
            warnings.filterwarnings("ignore", "HarfBuzz-Subset will be required", DeprecationWarning)
            import weasyprint  # type: ignore[import-untyped] # noqa: PLC0415 - loads Pango: only for a PDF
            from weasyprint.urls import URLFetcher  # type: ignore[import-untyped] # noqa: PLC0415
    except (ImportError, OSError) as exc:
        raise LedgerError(
            f"cannot write a PDF: WeasyPrint or the Pango library it needs is missing ({exc}); {PANGO_HINT}"
        ) from exc
    fetcher = URLFetcher(allowed_protocols=(), fail_on_errors=False)
    pdf: bytes = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
    return pdf
