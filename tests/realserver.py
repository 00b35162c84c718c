"""
The whole server, started as twistd would start it, on 127.0.0.1 port 0, for
tests that need real sockets.
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial import unittest

from chatroom.options import Options
from chatroom.server import ChatServer
from chatroom.tap import makeService
from tests.netclient import LineClient, connect

ADMIN_PASSWORD = "admin-secret"


class RunningServer:
    """Starts and stops a ChatServer on a data directory of the test's."""

    def __init__(
        self,
        testcase: unittest.TestCase,
        data_dir: Path,
        options: tuple[str, ...] = ("--port", "tcp:0:interface=127.0.0.1"),
    ) -> None:
        self.testcase = testcase
        self.data_dir = data_dir
        self.options = options
        self.server: ChatServer | None = None
        self.clients: list[LineClient] = []

    async def start(self) -> int:
        password_file = self.data_dir / "admin-password"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        password_file.write_text(ADMIN_PASSWORD + "\n")
        config = Options()
        config.parseOptions(
            [
                # Tests register many users from 127.0.0.1; a test of the
                # limit itself names it in its options, which come later.
                "--register-rate",
                "0",
                *self.options,
                "--data-dir",
                str(self.data_dir),
                "--bcrypt-rounds",
                "4",
                "--admin-password-file",
                str(password_file),
            ]
        )
        self.server = makeService(config)
        self.server.startService()
        self.testcase.addCleanup(self.stop)
        await self.server.ready
        return self.port()

    def port(self, index: int = 0) -> int:
        """The port number of the C{index}th endpoint."""
        return self.server.ports[index].getHost().port

    async def stop(self) -> None:
        for client in self.clients:
            client.transport.loseConnection()
        self.clients.clear()
        if self.server is not None and self.server.running:
            await self.server.stopService()

    async def client(self, name: str | None = None, password: str = "pw") -> LineClient:
        return await self.log_in(await connect(self.port()), name, password)

    async def log_in(
        self, client: LineClient, name: str | None, password: str = "pw"
    ) -> LineClient:
        """Log C{client} in as C{name}, registering it the first time."""
        self.clients.append(client)
        if name is not None:
            reply, _ = await client.send(f"/login {name} {password}")
            if not reply.startswith("+OK"):
                await client.ok(f"/register {name} {password}")
        return client
