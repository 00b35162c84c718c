"""The documentation keeps up with the code it describes."""

import re
from pathlib import Path

from twisted.trial import unittest

from chatroom import errors
from chatroom.options import LIMIT_PARAMETERS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


class ProtocolDocTests(unittest.TestCase):
    def test_every_error_code_is_in_the_table(self):
        text = (DOCS / "protocol.md").read_text(encoding="utf-8")
        documented = set(re.findall(r"^\| `([a-z-]+)` \|", text, re.MULTILINE))
        codes = {
            value.code
            for value in vars(errors).values()
            if isinstance(value, type) and issubclass(value, errors.ChatError)
        }
        self.assertEqual(codes - documented, set())


class ReliabilityDocTests(unittest.TestCase):
    def test_every_limit_option_is_in_the_table_with_its_default(self):
        text = (DOCS / "reliability.md").read_text(encoding="utf-8")
        for name, _, default, *_ in LIMIT_PARAMETERS:
            shown = f"{default:g}" if default < 1e6 else str(default)
            self.assertIn(f"| `--{name}` | {shown} |", text)


class LinkTests(unittest.TestCase):
    def test_every_page_a_page_names_exists(self):
        for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
            text = re.sub(r"\w+://\S+", "", page.read_text(encoding="utf-8"))
            for name in re.findall(r"[\w./-]*\w\.md\b", text):
                self.assertTrue(
                    (page.parent / name).exists() or (ROOT / name).exists(),
                    f"{page.relative_to(ROOT)} names {name}, which is not there",
                )
