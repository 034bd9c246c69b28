"""The browser tests' parts work: Playwright for Python drives Debian's ``chromium`` (``make browser``, a
prerequisite of ``make test``, installs both; Playwright's own browser download is refused on these machines, so
the test points it at the system executable) and renders a page served on loopback by a server this test starts.

It fails, never skips, when chromium is missing: the finance workspace's browser tests rely on the same parts.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from services.presentation.money import rupiah

PAGE = f"""<!doctype html><html lang="id"><head><meta charset="utf-8"><title>Karya · uji peramban</title>
<link rel="icon" href="data:,"></head>
<body><h1>Saldo tabungan</h1><p id="saldo">{rupiah(1_234_567)}</p>
<script>document.getElementById("saldo").dataset.ready = "1";</script></body></html>""".encode()


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(PAGE if self.path == "/" else b"not found")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test asserts what matters."""


@pytest.fixture
def served() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_chromium_renders_a_local_page_and_takes_a_screenshot(served: str, tmp_path: Path) -> None:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: run `make browser` (a prerequisite of `make test`)"
    errors: list[str] = []
    shot = tmp_path / "browser_smoke.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            response = page.goto(served)
            assert response is not None and response.status == 200
            assert page.title() == "Karya · uji peramban"
            assert page.locator("#saldo").inner_text() == "Rp 1.234.567"
            assert page.locator("#saldo").get_attribute("data-ready") == "1"  # the script ran
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
