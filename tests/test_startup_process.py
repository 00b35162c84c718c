"""
A start that cannot succeed, as a new user meets it: a real C{twistd -n
chatroom} process says in one line what to do, with no traceback, and
exits 1.  (Each run takes well under a second.)
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.trial import unittest

from chatroom.service.admin_password import GENERATED_PASSWORD_FILE
from chatroom.tls import load_or_create_certificate
from tests.asynctest import async_test
from tests.realserver import run_twistd, unwritable_directory

LOOPBACK = "tcp:0:interface=127.0.0.1"
FAST = ("--bcrypt-rounds", "4")


class FailedStartTests(unittest.TestCase):
    timeout = 30

    def setUp(self):
        self.directory = Path(self.mktemp()).resolve()
        self.data_dir = self.directory / "data"

    async def fails(self, *arguments: str, pythonpath: tuple[Path, ...] = ()) -> str:
        """Run twistd to its end; it must exit 1 without a traceback."""
        out, err, status = await run_twistd(
            self.directory, *arguments, pythonpath=pythonpath
        )
        output = out + err
        self.assertEqual(status, 1, output)
        self.assertNotIn("Traceback", output)
        return output

    async def option_error(self, *arguments: str) -> str:
        """An error found before starting: stderr is one line, nothing else."""
        out, err, status = await run_twistd(self.directory, *arguments)
        self.assertEqual(status, 1, out + err)
        self.assertEqual(out, "")
        [line] = err.splitlines()
        self.assertTrue(line.startswith("twistd chatroom: "), line)
        self.assertTrue(line.endswith("; see twistd chatroom --help"), line)
        return line

    def taken_port(self) -> int:
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        return taken.getHost().port

    @async_test
    async def test_port_in_use_is_one_line_and_status_1(self):
        port = self.taken_port()
        output = await self.fails(
            "--data-dir", str(self.data_dir), *FAST,
            "--port", f"tcp:{port}:interface=127.0.0.1",
        )  # fmt: skip
        self.assertIn(
            f"chatroom could not start: cannot listen on 127.0.0.1:{port}:"
            " Address already in use: stop what listens there, or choose"
            " another --port",
            output,
        )

    @async_test
    async def test_failed_first_start_keeps_the_generated_password(self):
        port = self.taken_port()
        arguments = (
            "--data-dir", str(self.data_dir), *FAST,
            "--port", f"tcp:{port}:interface=127.0.0.1",
        )  # fmt: skip
        first = await self.fails(*arguments)
        kept = self.data_dir / GENERATED_PASSWORD_FILE
        password = kept.read_text().strip()
        self.assertEqual(kept.stat().st_mode & 0o777, 0o600)
        self.assertIn(f"kept in {kept} until the admin changes it", first)
        second = await self.fails(*arguments)
        self.assertIn(f"the generated admin password is in {kept}", second)
        self.assertEqual(kept.read_text().strip(), password)

    @async_test
    async def test_unwritable_data_dir_is_one_line(self):
        unwritable = unwritable_directory(self)
        line = await self.option_error("--data-dir", str(unwritable), *FAST)
        self.assertIn(f"--data-dir {unwritable} is not writable", line)

    @async_test
    async def test_data_dir_that_cannot_be_made_is_one_line(self):
        missing = unwritable_directory(self) / "chatroom-data"
        line = await self.option_error("--data-dir", str(missing), *FAST)
        self.assertIn(f"--data-dir {missing} is not writable", line)

    @async_test
    async def test_missing_certificate_is_one_line(self):
        missing = self.directory / "cert.pem"
        line = await self.option_error(
            "--tls-port", "0", "--cert", str(missing), "--key", str(missing)
        )
        self.assertIn(f"cannot read --cert {missing}: No such file", line)

    @async_test
    async def test_key_of_another_certificate_is_one_line(self):
        cert, _ = load_or_create_certificate(self.directory / "a")
        _, key = load_or_create_certificate(self.directory / "b")
        line = await self.option_error(
            "--tls-port", "0", "--cert", str(cert), "--key", str(key)
        )
        self.assertIn(f"--key {key} is not the key of --cert {cert}", line)

    @async_test
    async def test_postgresql_without_psycopg_names_the_pip_line(self):
        # A psycopg that fails to import, as one not installed does.
        absent = self.directory / "absent"
        (absent / "psycopg").mkdir(parents=True)
        (absent / "psycopg" / "__init__.py").write_text(
            "raise ImportError('No module named psycopg')\n"
        )
        out, err, status = await run_twistd(
            self.directory,
            "--db", "postgresql://chat@127.0.0.1/chat",
            pythonpath=(absent,),
        )  # fmt: skip
        self.assertEqual(status, 1, out + err)
        self.assertEqual(
            err.strip(),
            "twistd chatroom: --db postgresql:// needs psycopg, which is not"
            " installed: pip install '.[postgres]'; see twistd chatroom --help",
        )

    @async_test
    async def test_option_error_is_one_line_not_the_whole_help(self):
        line = await self.option_error("--history", "many")
        self.assertIn("'many'", line)

    @async_test
    async def test_cert_and_key_without_tls_port_are_an_error(self):
        cert, key = load_or_create_certificate(self.directory / "tls")
        line = await self.option_error("--cert", str(cert), "--key", str(key))
        self.assertIn("--cert and --key are for --tls-port", line)

    @async_test
    async def test_version_is_chatroom_s(self):
        out, err, status = await run_twistd(self.directory, "--version")
        self.assertEqual(status, 0, err)
        self.assertRegex(out, r"\Achatroom \d+\.\d+\.\d+\S*\n\Z")
