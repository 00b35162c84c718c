"""The IRC servers of the IRC scenarios: chatroom's IRC port and two C
servers, ngIRCd and InspIRCd, each run from a config generated into its data
dir, on its free 127.0.0.1 port, with flood limits lifted so that what is
measured is fan-out, not a penalty."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench import servers
from bench.servers import HOST, ServerSpec

NGIRCD = "/usr/sbin/ngircd"
INSPIRCD = "/usr/sbin/inspircd"
CHATROOM_IRC = "chatroom IRC"

NGIRCD_CONF = """\
[Global]
Name = bench.ngircd
Info = chatroom bench
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = bench
ServerUID = 0
ServerGID = 0
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 3600
PongTimeout = 3600
[Options]
DNS = no
Ident = no
PAM = no
"""

# Flood limits lifted on the connect class: no fake lag, a command rate
# and queues no benchmark reaches, no per-address connection cap.
INSPIRCD_CONF = """\
<server name="bench.inspircd" description="chatroom bench" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
<pid file="{data_dir}/inspircd.pid">
<connect name="bench" allow="*" timeout="60" pingfreq="3600"
  threshold="1000000000" commandrate="1000000000" fakelag="off"
  softsendq="1073741824" hardsendq="1073741824" recvq="1048576"
  limit="1000000" localmax="1000000" globalmax="1000000" maxchans="100"
  resolvehostnames="no" useident="no">
<limits maxnick="30" maxchan="64">
<performance softlimit="100000" somaxconn="4096" clonesonconnect="no">
<options>
<security runasuser="" runasgroup="">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default"
  target="{data_dir}/inspircd.log">
"""


def chatroom_irc_spec() -> ServerSpec:
    """chatroom with an IRC port for guests, on ``{port}``; its line port
    is any free one. Rate limits lifted as in the line scenarios."""
    twistd = Path(sys.executable).with_name("twistd")
    argv = [
        str(twistd), "-n", "--pidfile=", "--logfile={data_dir}/server.log",
        "chatroom",
        "--port", f"tcp:0:interface={HOST}",
        "--irc-port", f"tcp:{{port}}:interface={HOST}",
        "--irc-guests",
        "--db", ":memory:",
        "--data-dir", "{data_dir}",
        "--bcrypt-rounds", "4",
        *servers.EXTRA_CHATROOM_ARGS,
    ]  # fmt: skip
    return ServerSpec(CHATROOM_IRC, tuple(argv), "IRC guests, storage in memory")


def ngircd_spec() -> ServerSpec:
    return ServerSpec(
        "ngircd",
        (NGIRCD, "--nodaemon", "--config", "{data_dir}/ngircd.conf"),
        "ngIRCd, penalties off",
        files=(("ngircd.conf", NGIRCD_CONF),),
    )


def inspircd_spec() -> ServerSpec:
    argv = [INSPIRCD, "--nofork", "--nopid", "--config", "{data_dir}/inspircd.conf"]
    if _root():
        argv.append("--runasroot")
    return ServerSpec(
        "inspircd",
        tuple(argv),
        "InspIRCd, fake lag off",
        files=(("inspircd.conf", INSPIRCD_CONF),),
    )


def _root() -> bool:
    import os

    return os.geteuid() == 0


def installed(spec: ServerSpec) -> bool:
    return shutil.which(spec.argv[0]) is not None


def c_server_specs() -> list[ServerSpec]:
    """The C servers installed here: a missing one is left out, and said."""
    return [spec for spec in (ngircd_spec(), inspircd_spec()) if installed(spec)]
