"""
The twistd plugin: command-line options, and the service makeService builds,
started on the real reactor with listeners on loopback port 0.  (That twistd
finds the plugin is in test_plugin.)
"""

import gc
import io
import os
import sys
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.logger import Logger, formatEvent, globalLogPublisher
from twisted.python import usage
from twisted.scripts.twistd import ServerOptions
from twisted.trial import unittest

from chatroom.options import ADMIN_PASSWORD_ENV, Options
from chatroom.server import ChatServer
from chatroom.service.admin_password import GENERATED_PASSWORD_FILE, AdminBootstrap
from chatroom.storage.database import Database
from chatroom.storage.engines import SQLITE
from chatroom.storage.retention import ActivityRetention
from chatroom.storage.schema import migrate
from chatroom.storage.store import ChatStore
from chatroom.tap import (
    MIDDLE_GENERATION_TURNS,
    activity_log_observer,
    makeService,
    tune_garbage_collector,
)
from chatroom.tls import load_or_create_certificate
from tests.asynctest import async_test
from tests.clients import MemoryClient
from tests.helpers import InlineHasher, SyncPool, fired
from tests.realserver import (
    unwritable_directory,
    writable_file_in_unwritable_directory,
)

LOOPBACK = "tcp:0:interface=127.0.0.1"


def _parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


def _absent(testcase, module: str) -> None:
    """Make C{import module} fail for the length of a test, as if not installed."""
    saved = sys.modules.get(module)
    sys.modules[module] = None
    testcase.addCleanup(sys.modules.__setitem__, module, saved)
    if saved is None:
        testcase.addCleanup(sys.modules.pop, module)


class _Environment:
    """Set or clear one environment variable for the length of a test."""

    @staticmethod
    def set(testcase, name: str, value: str | None) -> None:
        old = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

        def restore():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old

        testcase.addCleanup(restore)


class OptionsTests(unittest.TestCase):
    def setUp(self):
        _Environment.set(self, ADMIN_PASSWORD_ENV, None)

    def test_default_port_is_tcp_5000(self):
        self.assertEqual(_parse()["ports"], ["tcp:5000"])

    def test_port_number_means_tcp_on_every_interface(self):
        self.assertEqual(_parse("--port", "5001")["ports"], ["tcp:5001"])

    def test_port_may_be_an_endpoint_description(self):
        self.assertEqual(
            _parse("--port", "tcp:5000:interface=127.0.0.1")["ports"],
            ["tcp:5000:interface=127.0.0.1"],
        )

    def test_port_may_be_given_several_times(self):
        self.assertEqual(
            _parse("--port", "5000", "-p", "tcp6:5001")["ports"],
            ["tcp:5000", "tcp6:5001"],
        )

    def test_bad_port_is_a_usage_error(self):
        for port in ("nonsense:1", "tcp:abc", "-1", "", "70000"):
            self.assertRaises(usage.UsageError, _parse, "--port", port)

    def test_endpoint_whose_files_are_missing_is_a_usage_error(self):
        missing = os.path.join(self.mktemp(), "server.pem")
        self.assertRaises(
            usage.UsageError, _parse, "--port", f"ssl:5000:privateKey={missing}"
        )

    def test_history_must_be_a_positive_number(self):
        self.assertEqual(_parse("--history", "5")["history"], 5)
        for value in ("0", "-3", "many"):
            self.assertRaises(usage.UsageError, _parse, "--history", value)

    def test_a_limit_depth_refuses_zero_a_limit_that_can_be_off_takes_it(self):
        # As the Limits docstring says: these zeros would refuse everything.
        depths = "burst flood-strikes byte-burst output-soft register-burst"
        for depth in depths.split():
            self.assertRaises(usage.UsageError, _parse, f"--{depth}", "0")
        switches = (
            "rate byte-rate output-hard output-stall login-timeout ping-interval"
            " ping-timeout max-connections max-per-address register-rate"
        )
        for switch in switches.split():
            self.assertEqual(_parse(f"--{switch}", "0")[switch], 0, switch)

    def test_bcrypt_rounds_must_be_from_4_to_31(self):
        self.assertEqual(_parse("--bcrypt-rounds", "4")["bcrypt-rounds"], 4)
        for value in ("3", "32", "x"):
            self.assertRaises(usage.UsageError, _parse, "--bcrypt-rounds", value)

    def test_database_goes_in_the_data_directory_unless_named(self):
        # Paths this user may write: the options check that it can.
        chat, other = self.mktemp(), os.path.join(self.mktemp(), "x.db")
        self.assertEqual(
            _parse("--data-dir", chat)["db"], os.path.join(chat, "chatroom.sqlite3")
        )
        self.assertEqual(_parse("--data-dir", chat, "--db", other)["db"], other)

    def test_admin_password_is_the_first_line_of_its_file(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("s3cret pass\nignored\n")
        options = _parse("--admin-password-file", path)
        self.assertEqual(options["admin-password"], "s3cret pass")

    def test_missing_or_empty_admin_password_file_is_a_usage_error(self):
        empty = self.mktemp()
        open(empty, "w").close()
        for path in (empty, self.mktemp()):
            self.assertRaises(usage.UsageError, _parse, "--admin-password-file", path)

    def test_admin_password_may_come_from_the_environment(self):
        _Environment.set(self, ADMIN_PASSWORD_ENV, "from-env")
        self.assertEqual(_parse()["admin-password"], "from-env")

    def test_admin_password_file_wins_over_the_environment(self):
        _Environment.set(self, ADMIN_PASSWORD_ENV, "from-env")
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("from-file\n")
        options = _parse("--admin-password-file", path)
        self.assertEqual(options["admin-password"], "from-file")

    def test_no_admin_password_given(self):
        self.assertIsNone(_parse()["admin-password"])

    def test_cert_and_key_without_a_tls_port_are_refused(self):
        cert, key = load_or_create_certificate(self.mktemp())
        with self.assertRaises(usage.UsageError) as caught:
            _parse("--cert", str(cert), "--key", str(key))
        self.assertIn("--cert and --key are for --tls-port", str(caught.exception))

    def test_certificate_and_key_are_read_before_the_start(self):
        cert, key = load_or_create_certificate(self.mktemp())
        other_cert, other_key = load_or_create_certificate(self.mktemp())
        missing = self.mktemp()
        for given, complaint in [
            ((missing, str(key)), f"cannot read --cert {missing}"),
            ((str(cert), missing), f"cannot read --key {missing}"),
            ((str(key), str(key)), f"--cert {key} holds no PEM certificate"),
            ((str(cert), str(cert)), f"--key {cert} holds no unencrypted PEM"),
            ((str(cert), str(other_key)), f"--key {other_key} is not the key of"),
        ]:
            with self.assertRaises(usage.UsageError) as caught:
                _parse("--tls-port", "5001", "--cert", given[0], "--key", given[1])
            self.assertIn(complaint, str(caught.exception))
        self.assertEqual(
            _parse("--tls-port", "5001", "--cert", str(other_cert), "--key",
                   str(other_key))["cert"],
            str(other_cert),
        )  # fmt: skip

    def test_unwritable_data_dir_is_refused(self):
        unwritable = unwritable_directory(self)
        for data_dir in (unwritable, unwritable / "chatroom-data"):
            with self.assertRaises(usage.UsageError) as caught:
                _parse("--data-dir", str(data_dir))
            self.assertIn(
                f"--data-dir {data_dir} is not writable", str(caught.exception)
            )

    def test_a_database_file_in_a_directory_that_is_not_writable_is_refused(self):
        database = writable_file_in_unwritable_directory(self)
        with self.assertRaises(usage.UsageError) as caught:
            _parse(
                "--db", str(database), "--admin-password-file", self._password_file()
            )
        self.assertIn(f"--db {database.parent} is not writable", str(caught.exception))

    def test_data_dir_need_not_be_writable_when_nothing_goes_there(self):
        options = _parse(
            "--data-dir", str(unwritable_directory(self)), "--db", ":memory:",
            "--admin-password-file", self._password_file(),
        )  # fmt: skip
        self.assertEqual(options["db"], ":memory:")

    def _password_file(self) -> str:
        path = self.mktemp()
        Path(path).write_text("pw\n")
        return path

    def test_missing_extras_name_their_pip_line(self):
        for module, options, line in [
            ("psycopg", ["--db", "postgresql://chat@db/chat"], ".[postgres]"),
            ("txredisapi", ["--redis", "redis://127.0.0.1:6379/0"], ".[redis]"),
        ]:
            _absent(self, module)
            with self.assertRaises(usage.UsageError) as caught:
                _parse("--admin-password-file", self._password_file(), *options)
            self.assertIn(f"pip install '{line}'", str(caught.exception))

    def test_a_usage_error_under_twistd_is_one_line_and_status_1(self):
        with self.assertRaises(SystemExit) as caught:
            ServerOptions().parseOptions(["chatroom", "--cert", "c.pem"])
        self.assertEqual(
            caught.exception.code,
            "twistd chatroom: --cert and --key go together; see twistd chatroom --help",
        )

    def test_version_is_chatroom_s(self):
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        with self.assertRaises(SystemExit) as caught:
            _parse("--version")
        self.assertEqual(caught.exception.code, 0)
        self.assertRegex(out.getvalue(), r"\Achatroom \d+\.\d+\.\d+\S*\n\Z")

    def test_help_explains_every_option(self):
        text = str(Options())
        for option in (
            "--port",
            "--data-dir",
            "--db",
            "--admin-password-file",
            "--history",
        ):
            self.assertIn(option, text)
        self.assertIn(ADMIN_PASSWORD_ENV, text)

    def test_help_descriptions_have_no_gaps(self):
        # usage.Options keeps a docstring's line breaks and indentation.
        for line in str(Options()).splitlines():
            description = line[30:]
            self.assertNotRegex(description, r"\S {2,}\S", line)


class LogLevelTests(unittest.TestCase):
    def setUp(self):
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def _logged(self, *args: str) -> list[str]:
        log = Logger(observer=activity_log_observer(_parse(*args)["log-level"]))
        log.debug("{event}", event="message")
        log.info("{event}", event="login")
        return [event["event"] for event in self.events if "event" in event]

    def test_message_events_are_not_logged_by_default(self):
        self.assertEqual(self._logged(), ["login"])

    def test_debug_logs_every_event(self):
        self.assertEqual(self._logged("--log-level", "DEBUG"), ["message", "login"])

    def test_unknown_level_is_refused(self):
        self.assertRaises(usage.UsageError, _parse, "--log-level", "loud")


class MakeServiceTests(unittest.TestCase):
    timeout = 30

    def setUp(self):
        _Environment.set(self, ADMIN_PASSWORD_ENV, None)
        self.db = os.path.join(self.mktemp(), "chat.sqlite3")
        self.data_dir = self.mktemp()
        self.kept = Path(self.data_dir) / GENERATED_PASSWORD_FILE
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    async def _start(self, *args: str) -> ChatServer:
        options = _parse(
            "--db", self.db, "--data-dir", self.data_dir, "--bcrypt-rounds", "4",
            "--port", LOOPBACK, *args,
        )  # fmt: skip
        server = makeService(options, reactor)
        self.addCleanup(lambda: server.stopService() if server.running else None)
        server.startService()
        await server.ready
        return server

    def _generated_passwords(self) -> list[str]:
        return [
            event["password"]
            for event in self.events
            if "generated the admin password" in event.get("log_format", "")
        ]

    async def _admin_login(self, server: ChatServer, password: str) -> list[str]:
        return await MemoryClient(server.factory).send(f"/login admin {password}")

    def test_make_service_opens_nothing_until_started(self):
        options = _parse("--db", self.db, "--port", LOOPBACK)
        server = makeService(options, reactor)
        self.addCleanup(server.database.close)
        self.addCleanup(server.chat.hasher.stop)
        self.assertFalse(os.path.exists(self.db))
        self.assertEqual(server.ports, [])

    def test_quota_and_retention_options_reach_the_chat_and_the_retention(self):
        defaults = makeService(_parse("--db", self.db, "--port", LOOPBACK), reactor)
        options = _parse(
            "--db", self.db, "--port", LOOPBACK,
            "--mailbox-per-sender", "7",
            "--max-rooms-created", "3",
            "--activity-days", "0",
        )  # fmt: skip
        server = makeService(options, reactor)
        for made in (defaults, server):
            self.addCleanup(made.database.close)
            self.addCleanup(made.chat.hasher.stop)
        retention = ActivityRetention.name
        self.assertEqual(
            (
                defaults.chat.mailbox_per_sender,
                defaults.chat.max_rooms_created,
                defaults.getServiceNamed(retention).days,
            ),
            (100, 20, 90),
        )
        self.assertEqual(
            (
                server.chat.mailbox_per_sender,
                server.chat.max_rooms_created,
                server.getServiceNamed(retention).days,
            ),
            (7, 3, 0),
        )

    @async_test
    async def test_start_opens_the_database_and_listens(self):
        server = await self._start("--port", LOOPBACK)
        self.assertTrue(os.path.exists(self.db))
        self.assertEqual(len(server.ports), 2)
        for port in server.ports:
            self.assertEqual(port.getHost().host, "127.0.0.1")
        self.assertIsNotNone(await server.chat.store.find_user("admin"))

    @async_test
    async def test_first_start_without_a_password_generates_and_logs_one(self):
        server = await self._start()
        [password] = self._generated_passwords()
        self.assertEqual(
            await self._admin_login(server, password), ["+OK welcome, admin"]
        )

    @async_test
    async def test_later_start_without_a_password_keeps_the_generated_one(self):
        first = await self._start()
        [password] = self._generated_passwords()
        await first.stopService()
        second = await self._start()
        self.assertEqual(self._generated_passwords(), [password])
        self.assertEqual(
            await self._admin_login(second, password), ["+OK welcome, admin"]
        )

    @async_test
    async def test_generated_password_is_kept_in_a_private_file(self):
        await self._start()
        [password] = self._generated_passwords()
        self.assertEqual(self.kept.read_text(), password + "\n")
        self.assertEqual(self.kept.stat().st_mode & 0o777, 0o600)
        [event] = [e for e in self.events if e.get("password") == password]
        self.assertEqual(event["path"], str(self.kept.absolute()))

    @async_test
    async def test_first_start_after_one_that_failed_before_storing_reuses_its_password(
        self,
    ):
        # A start that failed between keeping the password and storing the admin.
        self.kept.parent.mkdir(parents=True)
        self.kept.write_text("kept-by-the-failed-start\n")
        server = await self._start()
        self.assertEqual(self._generated_passwords(), ["kept-by-the-failed-start"])
        self.assertEqual(self.kept.read_text(), "kept-by-the-failed-start\n")
        self.assertEqual(
            await self._admin_login(server, "kept-by-the-failed-start"),
            ["+OK welcome, admin"],
        )

    @async_test
    async def test_kept_password_goes_when_the_admin_changes_it(self):
        server = await self._start()
        [password] = self._generated_passwords()
        admin = MemoryClient(server.factory)
        await admin.send(f"/login admin {password}")
        self.assertEqual(
            await admin.send(f"/p {password} chosen-by-admin"),
            ["+OK password changed"],
        )
        self.assertFalse(self.kept.exists())

    @async_test
    async def test_kept_password_goes_when_one_is_given(self):
        first = await self._start()
        await first.stopService()
        _Environment.set(self, ADMIN_PASSWORD_ENV, "env-password")
        await self._start()
        self.assertFalse(self.kept.exists())

    @async_test
    async def test_kept_password_changed_elsewhere_goes_at_the_next_start(self):
        first = await self._start()
        admin = await first.chat.store.find_user("admin")
        # As another node would: the stored hash is no longer the kept one's.
        new_hash = await first.chat.hasher.hash("changed-on-another-node")
        await first.chat.store.set_password_hash(admin.id, new_hash)
        await first.stopService()
        await self._start()
        self.assertFalse(self.kept.exists())

    @async_test
    async def test_kept_password_that_still_works_is_pointed_at_each_start(self):
        first = await self._start()
        await first.stopService()
        await self._start()
        [reminder] = [
            e
            for e in self.events
            if "generated admin password is in" in e.get("log_format", "")
        ]
        self.assertEqual(reminder["path"], str(self.kept.absolute()))
        self.assertTrue(self.kept.exists())

    def test_start_up_line_names_every_listener(self):
        options = _parse(
            "--db", self.db, "--data-dir", self.data_dir,
            "--tls-port", "0:interface=127.0.0.1",
        )  # fmt: skip
        server = makeService(options, reactor)
        self.addCleanup(server.database.close)
        self.addCleanup(server.chat.hasher.stop)
        [line] = [e for e in self.events if "chatroom on" in e.get("log_format", "")]
        self.assertEqual(line["ports"], "tls:0:interface=127.0.0.1")

    @async_test
    async def test_admin_logs_in_with_the_password_from_the_file(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("file-password\n")
        server = await self._start("--admin-password-file", path)
        self.assertEqual(self._generated_passwords(), [])
        self.assertEqual(
            await self._admin_login(server, "file-password"), ["+OK welcome, admin"]
        )

    @async_test
    async def test_admin_password_from_the_environment_replaces_the_old_one(self):
        first = await self._start()
        [generated] = self._generated_passwords()
        await first.stopService()
        _Environment.set(self, ADMIN_PASSWORD_ENV, "env-password")
        second = await self._start()
        self.assertEqual(
            await self._admin_login(second, "env-password"), ["+OK welcome, admin"]
        )
        reply = await self._admin_login(second, generated)
        self.assertTrue(reply[-1].startswith("-ERR auth-failed"), reply)

    @async_test
    async def test_a_port_it_cannot_listen_on_stops_the_reactor(self):
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        options = _parse(
            "--db", self.db, "--bcrypt-rounds", "4",
            "--port", f"tcp:{taken.getHost().port}:interface=127.0.0.1",
        )  # fmt: skip
        server = makeService(options, reactor)
        stopped = []
        server.reactor = _Reactor(stopped)
        self.addCleanup(lambda: server.stopService() if server.running else None)
        server.startService()
        await server.ready
        self.assertEqual(stopped, [True])
        self.assertEqual(server.ports, [])
        self.flushLoggedErrors(CannotListenError)

    @async_test
    async def test_a_port_it_cannot_listen_on_is_one_line_not_a_traceback(self):
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        options = _parse(
            "--db", self.db, "--data-dir", self.data_dir, "--bcrypt-rounds", "4",
            "--port", f"tcp:{port}:interface=127.0.0.1",
        )  # fmt: skip
        server = makeService(options, reactor)
        server.reactor = _Reactor([])
        self.addCleanup(lambda: server.stopService() if server.running else None)
        server.startService()
        await server.ready
        self.assertTrue(server.start_failed)
        self.assertEqual(self.flushLoggedErrors(), [])
        [event] = [e for e in self.events if "could not start" in e["log_format"]]
        self.assertEqual(
            event["reason"],
            f"cannot listen on 127.0.0.1:{port}: Address already in use:"
            " stop what listens there, or choose another --port",
        )


class AdminBootstrapTests(unittest.TestCase):
    def test_a_password_with_no_file_to_keep_it_names_none(self):
        database = Database(SyncPool(), SQLITE)
        fired(migrate(database))
        events: list[dict] = []
        bootstrap = AdminBootstrap(
            ChatStore(database), InlineHasher(), lambda: 0, None,
            Logger(observer=events.append),
        )  # fmt: skip
        fired(defer.ensureDeferred(bootstrap.ensure(None)))
        [line] = [formatEvent(event) for event in events]
        self.assertTrue(line.startswith("generated the admin password: "), line)
        self.assertNotIn("kept in", line)


class _Reactor:
    """Stands in for the reactor a server stops when it cannot start."""

    def __init__(self, stopped: list) -> None:
        self.stopped = stopped

    def stop(self) -> None:
        self.stopped.append(True)


class GarbageCollectorTests(unittest.TestCase):
    def test_survivors_stay_longer_in_the_middle_generation(self):
        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        gc.set_threshold(700, 10, 10)
        tune_garbage_collector()
        # The youngest threshold is kept: garbage cycles go as soon as before.
        self.assertEqual(gc.get_threshold(), (700, MIDDLE_GENERATION_TURNS, 10))
        self.assertGreater(MIDDLE_GENERATION_TURNS, 10)

    def test_only_the_twistd_process_is_tuned(self):
        from chatroom import tap

        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        gc.set_threshold(700, 10, 10)
        self.patch(tap, "_server", lambda config, reactor: object())
        self.patch(tap.atexit, "register", lambda *args: None)
        makeService(_parse("--db", self.mktemp()), reactor)
        self.assertEqual(gc.get_threshold(), (700, 10, 10))
        makeService(_parse("--db", self.mktemp()))
        self.assertEqual(gc.get_threshold(), (700, MIDDLE_GENERATION_TURNS, 10))
