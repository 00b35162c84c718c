"""
What the page's files must never hold, read as text: no inline script or
style (the CSP would refuse them), nothing fetched from elsewhere, no HTML
built from strings (text goes in as textContent).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from twisted.trial import unittest

from tests.web.browser import STATIC


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self.tags and self.tags[-1][0] in ("script", "style"):
            self.script_text += data.strip()


def page_files():
    return sorted(p for p in STATIC.rglob("*") if p.is_file())


class PageFileTests(unittest.TestCase):
    def test_index_has_no_inline_script_or_style(self):
        parsed = Tags()
        parsed.feed((STATIC / "index.html").read_text())
        self.assertEqual(parsed.script_text, "")
        self.assertNotIn("style", [tag for tag, _ in parsed.tags])
        for tag, attributes in parsed.tags:
            inline = [a for a in attributes if a == "style" or a.startswith("on")]
            self.assertEqual(inline, [], f"<{tag}> has {inline}")
        scripts = [a for tag, a in parsed.tags if tag == "script"]
        self.assertEqual(scripts, [{"type": "module", "src": "static/js/main.js"}])

    def test_nothing_is_fetched_from_another_site(self):
        for path in page_files():
            text = path.read_text()
            self.assertIsNone(
                re.search(r"""(src|href)=["']?(https?:)?//|@import|url\(""", text),
                f"{path.name} loads something from elsewhere",
            )

    def test_scripts_build_no_html_from_strings(self):
        unsafe = re.compile(
            r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\("
        )
        scripts = [p for p in page_files() if p.suffix == ".js"]
        self.assertTrue(scripts)
        for path in scripts:
            self.assertIsNone(unsafe.search(path.read_text()), path.name)

    def test_nothing_is_kept_in_the_browser(self):
        stores = re.compile(r"localStorage|sessionStorage|indexedDB|document\.cookie")
        for path in page_files():
            self.assertIsNone(stores.search(path.read_text()), path.name)
