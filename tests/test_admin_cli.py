"""
chatroom-admin against a SQLite file a server is using: its main() run in
this process with arguments, output captured; and once as the installed
console script.
"""

import io
import json
import os
import shutil
import subprocess
import sys

from twisted.trial import unittest

from chatroom.admin import cli
from chatroom.storage.engines import SQLITE
from chatroom.storage.schema import MIGRATIONS, SCHEMA_VERSION
from tests.clients import data_lines
from tests.helpers import ADMIN_PASSWORD, ChatWorld, fired, sqlite_file


class CLITestCase(unittest.TestCase):
    def setUp(self):
        self.db = sqlite_file(self)
        # A server on the file, running beside the command.
        self.world = ChatWorld(location=self.db)
        self.alice = self.world.user("alice")
        self.password_file = os.path.join(os.path.dirname(self.db), "password")
        with open(self.password_file, "w") as f:
            f.write("new secret\n")

    def run_cli(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = cli.main(["--db", self.db, *args], out, err)
        return status, out.getvalue(), err.getvalue()

    def ok(self, *args: str) -> str:
        status, out, err = self.run_cli(*args)
        self.assertEqual((status, err), (0, ""), out)
        return out

    def failed(self, *args: str) -> str:
        status, out, err = self.run_cli(*args)
        self.assertEqual((status, out), (1, ""), err)
        return err

    def login(self, name: str, password: str = "pw") -> str:
        return self.world.connect().command(f"/login {name} {password}")


class UserTests(CLITestCase):
    def test_list_as_a_table_and_as_json(self):
        table = self.ok("users", "list").splitlines()
        self.assertEqual(table[0].split(), ["NAME", "ADMIN", "SUSPENDED", "CREATED"])
        self.assertEqual([line.split()[0] for line in table[1:]], ["admin", "alice"])
        users = json.loads(self.ok("users", "list", "--json"))
        self.assertEqual(users, json.loads(self.ok("--json", "users", "list")))
        self.assertEqual(
            [(u["name"], u["admin"], u["suspended"]) for u in users],
            [("admin", True, False), ("alice", False, False)],
        )

    def test_a_suspension_holds_from_the_next_login(self):
        self.assertEqual(self.ok("users", "suspend", "alice"), "suspended alice\n")
        self.assertEqual(
            self.login("alice"),
            "-ERR account-suspended this account is suspended: ask the admin",
        )
        # A session already open is the chat's /suspend to end, not this.
        self.assertFalse(self.alice.closing)
        self.assertEqual(self.ok("users", "restore", "alice"), "restored alice\n")
        self.assertEqual(self.login("alice"), "+OK welcome, alice")

    def test_suspending_twice_says_so(self):
        self.ok("users", "suspend", "alice")
        self.assertEqual(self.ok("users", "suspend", "alice"), "alice was suspended\n")
        self.assertEqual(
            json.loads(self.ok("--json", "users", "restore", "alice")),
            {"ok": True, "name": "alice", "changed": True},
        )

    def test_the_admin_account_is_not_suspended(self):
        self.assertIn(
            "the admin account cannot be suspended",
            self.failed("users", "suspend", "admin"),
        )
        self.assertEqual(self.login("admin", ADMIN_PASSWORD), "+OK welcome, admin")

    def test_create_then_log_in(self):
        self.assertEqual(
            self.ok(
                "users",
                "create",
                "bob",
                "--password-file",
                self.password_file,
                "--bcrypt-rounds",
                "4",
            ),
            "created bob\n",
        )
        self.assertEqual(self.login("bob", "new secret"), "+OK welcome, bob")

    def test_create_refuses_a_taken_or_reserved_name(self):
        args = ["--password-file", self.password_file, "--bcrypt-rounds", "4"]
        self.assertIn(
            "that name is taken", self.failed("users", "create", "ALICE", *args)
        )
        self.assertIn(
            "admin is reserved", self.failed("users", "create", "admin", *args)
        )
        self.assertIn("names are 1 to 32", self.failed("users", "create", "a b", *args))

    def test_reset_password(self):
        self.ok(
            "users",
            "reset-password",
            "alice",
            "--password-file",
            self.password_file,
            "--bcrypt-rounds",
            "4",
        )
        self.assertEqual(self.login("alice"), "-ERR auth-failed wrong name or password")
        self.assertEqual(self.login("alice", "new secret"), "+OK welcome, alice")

    def test_a_password_is_asked_for_when_no_file_is_given(self):
        answers = iter(["typed pw", "typed pw"])
        self.patch(cli.getpass, "getpass", lambda prompt: next(answers))
        self.ok("users", "reset-password", "alice", "--bcrypt-rounds", "4")
        self.assertEqual(self.login("alice", "typed pw"), "+OK welcome, alice")

    def test_two_different_typed_passwords_change_nothing(self):
        answers = iter(["one", "two"])
        self.patch(cli.getpass, "getpass", lambda prompt: next(answers))
        self.assertIn(
            "the passwords differ", self.failed("users", "reset-password", "alice")
        )
        self.assertEqual(self.login("alice"), "+OK welcome, alice")

    def test_no_password_on_the_command_line(self):
        status, _, err = self.run_cli("users", "create", "bob", "secret")
        self.assertEqual(status, 2)
        self.assertIn("unrecognized arguments: secret", err)

    def test_release_name(self):
        self.alice.command("/u alicia")
        self.assertEqual(self.ok("users", "release-name", "alice"), "released alice\n")
        self.assertEqual(
            self.world.connect().command("/register alice pw"), "+OK welcome, alice"
        )
        self.assertIn(
            "nobody is not a former name",
            self.failed("users", "release-name", "nobody"),
        )

    def test_an_unknown_user_fails(self):
        for action in ("suspend", "restore"):
            self.assertEqual(
                self.failed("users", action, "nobody"),
                "chatroom-admin: there is no user called nobody\n",
            )


class RoomAndHistoryTests(CLITestCase):
    def setUp(self):
        super().setUp()
        self.alice.command("/c den")
        for text in ("one", "two", "three"):
            self.alice.command(f"/public den {text}")
        fired(self.world.database.flushed())

    def test_list(self):
        rooms = json.loads(self.ok("--json", "rooms", "list"))
        self.assertEqual(
            [(r["name"], r["members"], r["messages"]) for r in rooms],
            [("den", 1, 3), ("lobby", 2, 0)],
        )
        self.assertEqual(
            self.ok("rooms", "list").splitlines()[0].split(),
            ["ROOM", "MEMBERS", "MESSAGES", "CREATED"],
        )

    def test_export_every_message_in_order(self):
        self.patch(cli, "EXPORT_PAGE", 2)
        lines = self.ok("history", "export", "#den", "--format", "jsonl").splitlines()
        messages = [json.loads(line) for line in lines]
        self.assertEqual(
            [(m["room"], m["seq"], m["sender"], m["text"]) for m in messages],
            [
                ("den", 1, "alice", "one"),
                ("den", 2, "alice", "two"),
                ("den", 3, "alice", "three"),
            ],
        )

    def test_delete(self):
        self.assertEqual(
            self.ok("rooms", "delete", "den"), "deleted #den and its 3 messages\n"
        )
        names = [r["name"] for r in json.loads(self.ok("--json", "rooms", "list"))]
        self.assertEqual(names, ["lobby"])
        self.assertIn("no room called den", self.failed("history", "export", "den"))
        self.assertIn("no room called den", self.failed("rooms", "delete", "den"))

    def test_the_lobby_stays(self):
        self.assertIn("the lobby", self.failed("rooms", "delete", "lobby"))


class ActivityTests(CLITestCase):
    def test_since_a_date(self):
        self.ok("users", "suspend", "alice")
        entries = json.loads(self.ok("--json", "activity", "--user", "alice"))
        events = [(e["event"], e["actor"]) for e in entries]
        self.assertIn(("register", "alice"), events)
        self.assertEqual(events[-1], ("suspend", "chatroom-admin"))
        # The world's clock is at 0: everything is from 1970.
        self.assertEqual(
            [
                e["event"]
                for e in json.loads(
                    self.ok(
                        "--json", "activity", "--user", "alice", "--since", "2000-01-01"
                    )
                )
            ],
            ["suspend"],
        )
        table = self.ok("activity", "--user", "alice").splitlines()
        self.assertEqual(table[0].split(), ["TIME", "EVENT", "ACTOR", "DETAIL"])

    def test_a_bad_date_fails(self):
        self.assertIn(
            "give a date", self.failed("activity", "--user", "alice", "--since", "soon")
        )

    def test_what_the_chat_logs_the_cli_shows(self):
        admin = self.world.user("admin", ADMIN_PASSWORD)
        admin.command("/suspend alice")
        entries = json.loads(self.ok("--json", "activity", "--user", "alice"))
        self.assertIn(("suspend", "admin"), [(e["event"], e["actor"]) for e in entries])
        admin.write("/log alice")
        self.assertTrue(any("suspend" in line for line in data_lines(admin.take())))


class DatabaseTests(unittest.TestCase):
    def test_no_database_is_made_for_a_wrong_path(self):
        missing = os.path.join(self.mktemp(), "nothing.sqlite3")
        err = io.StringIO()
        self.assertEqual(
            cli.main(["--db", missing, "users", "list"], io.StringIO(), err), 1
        )
        self.assertIn("there is no database at", err.getvalue())
        self.assertFalse(os.path.exists(missing))

    def test_data_dir_names_the_file_as_for_the_server(self):
        directory = self.mktemp()
        os.makedirs(directory)
        ChatWorld(location=os.path.join(directory, "chatroom.sqlite3"))
        out = io.StringIO()
        self.assertEqual(cli.main(["--data-dir", directory, "users", "list"], out), 0)
        self.assertIn("admin", out.getvalue())

    def test_an_older_schema_is_migrated_as_the_server_would(self):
        import sqlite3

        # A database of the server before accounts could be suspended.
        db = sqlite_file(self)
        connection = sqlite3.connect(db)
        suspended = next(
            i for i, m in enumerate(MIGRATIONS) if any("suspended" in s for s in m)
        )
        for statements in MIGRATIONS[:suspended]:
            for statement in statements:
                connection.execute(statement.format(**SQLITE.ddl))
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO schema_version VALUES (?)", (suspended,))
        connection.commit()
        connection.close()
        out = io.StringIO()
        self.assertEqual(cli.main(["--db", db, "users", "list"], out), 0)
        self.assertEqual(
            out.getvalue().split(), ["NAME", "ADMIN", "SUSPENDED", "CREATED"]
        )
        connection = sqlite3.connect(db)
        self.assertEqual(
            connection.execute("SELECT version FROM schema_version").fetchone(),
            (SCHEMA_VERSION,),
        )
        connection.close()


class NewerSchemaTests(CLITestCase):
    def test_a_newer_schema_is_refused_and_left_alone(self):
        self.world.pool.connection.execute(
            "UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,)
        )
        err = self.failed("users", "list")
        self.assertIn("newer than this server's", err)


class ConsoleScriptTests(CLITestCase):
    def test_the_installed_script(self):
        script = shutil.which("chatroom-admin", path=os.path.dirname(sys.executable))
        if script is None:
            raise unittest.SkipTest("chatroom-admin is not installed here")
        done = subprocess.run(
            [script, "--db", self.db, "--json", "users", "suspend", "alice"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["name"], "alice")
        self.assertTrue(fired(self.world.chat.store.find_user("alice")).suspended)
        done = subprocess.run(
            [script, "--db", self.db, "users", "suspend", "nobody"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(
            (done.returncode, done.stdout, done.stderr),
            (1, "", "chatroom-admin: there is no user called nobody\n"),
        )


class PostgresTests(unittest.TestCase):
    """The same transactions on PostgreSQL, the cluster's database."""

    def setUp(self):
        from tests.cluster_helpers import Schema, postgres_unavailable

        reason = postgres_unavailable()
        if reason:
            raise unittest.SkipTest(reason)
        self.schema = Schema()
        self.addCleanup(self.schema.drop)
        self.password_file = os.path.join(self.mktemp())
        with open(self.password_file, "w") as f:
            f.write("pg secret\n")

    def run_cli(self, *args: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        status = cli.main(["--db", self.schema.url, *args], out, err)
        self.assertEqual((status, err.getvalue()), (0, ""))
        return out.getvalue()

    def test_create_suspend_list_and_log(self):
        self.run_cli(
            "users", "create", "bob", "--password-file", self.password_file,
            "--bcrypt-rounds", "4",
        )  # fmt: skip
        self.run_cli("users", "suspend", "bob")
        users = json.loads(self.run_cli("--json", "users", "list"))
        self.assertEqual([(u["name"], u["suspended"]) for u in users], [("bob", True)])
        entries = json.loads(self.run_cli("--json", "activity", "--user", "bob"))
        self.assertEqual([e["event"] for e in entries], ["register", "suspend"])
        rooms = json.loads(self.run_cli("--json", "rooms", "list"))
        self.assertEqual([(r["name"], r["members"]) for r in rooms], [("lobby", 1)])
        self.assertEqual(self.run_cli("history", "export", "lobby"), "")
