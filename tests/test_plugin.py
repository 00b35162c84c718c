"""twistd finds the chatroom plugin, from the source tree and once installed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.trial import unittest

import twisted.plugins
from tests.realserver import TWISTD


class PluginTests(unittest.TestCase):
    def test_getplugins_finds_chatroom(self):
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("chatroom", makers)
        self.assertEqual(makers["chatroom"].module, "chatroom.tap")

    def test_plugin_package_has_no_init_of_ours(self):
        # An __init__.py beside our plugin would shadow Twisted's own package.
        ours = [
            path
            for path in twisted.plugins.__path__
            if os.path.exists(os.path.join(path, "chatroom_plugin.py"))
        ]
        self.assertTrue(ours)
        for path in ours:
            if "site-packages" not in path:
                self.assertFalse(os.path.exists(os.path.join(path, "__init__.py")))

    def test_installed_twistd_lists_and_explains_chatroom(self):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # Outside the source tree, so only the installed plugin can answer.
        with tempfile.TemporaryDirectory() as elsewhere:
            installed = subprocess.run(
                [sys.executable, "-c", "import chatroom.tap"], cwd=elsewhere, env=env
            )
            if installed.returncode != 0:
                raise unittest.SkipTest(
                    "chatroom is not installed in this environment (pip install .)"
                )
            listing = subprocess.run(
                [*TWISTD, "--help"],
                cwd=elsewhere,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            usage = subprocess.run(
                [*TWISTD, "chatroom", "--help"],
                cwd=elsewhere,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        self.assertIn("chatroom", listing.stdout)
        self.assertEqual(usage.returncode, 0, usage.stderr)
        for option in ("--port", "--data-dir", "--db", "--admin-password-file"):
            self.assertIn(option, usage.stdout)
