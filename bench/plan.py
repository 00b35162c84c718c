"""What a run is made of: its sizes, its context, and the simulated users."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench import servers
from bench.generator import ClientSpec
from bench.report import Progress
from bench.servers import ServerSpec

PASSWORD = "bench-pass-1"
LOBBY = "lobby"
MODERATE_DELIVERIES = 200_000  # the fixed "moderate" load of the targets
HIGH_DELIVERIES = 500_000
CHAT_BCRYPT_ROUNDS = 4  # where logins are not what is measured
PRODUCTION_BCRYPT_ROUNDS = 12


@dataclass(frozen=True)
class Sizes:
    """How big and how long; ``QUICK_SIZES`` is the CI smoke test."""

    fanout_members: tuple[int, ...] = (100, 500, 2000)
    target_members: int = 500  # the N the fan-out targets are judged at
    large_members: int = 2000  # the N where the real server must match bare
    fanout_senders: int = 4
    sampled_receivers: int = 16
    ladder: tuple[int, ...] = (
        50_000,
        100_000,
        200_000,
        350_000,
        500_000,
        750_000,
        1_000_000,
        1_250_000,
        1_500_000,
        2_000_000,
        # For the coalescing baseline (and a server that beats the plain one
        # twice): up to past the generator's receive ceiling (~6M/s a core,
        # more with the IRC scenario's bulk receivers).
        2_500_000,
        3_000_000,
        4_000_000,
        5_000_000,
        6_000_000,
        8_000_000,
        10_000_000,
        12_000_000,
    )
    warmup_s: float = 0.5
    window_s: float = 2.0
    drain_s: float = 2.0
    disturbed_attempts: int = 3  # tries of a step that others' load disturbed
    rooms: int = 200
    room_size: int = 10
    idle_clients: int = 10_000
    storm_logins: int = 500
    storm_members: int = 100
    history_messages: int = 1_000_000
    history_probes: int = 200
    timeline_members: int = 500
    timeline_idle_messages_per_s: float = 20.0  # each message alone in the server
    timeline_moderate_deliveries: int = MODERATE_DELIVERIES
    irc_members: int = 500  # issue 13: 500 IRC clients in one channel
    irc_paced_deliveries: int = MODERATE_DELIVERIES
    irc_idle_clients: int = 2000


QUICK_SIZES = Sizes(
    fanout_members=(100,),
    target_members=100,
    sampled_receivers=8,
    ladder=(50_000, 200_000),
    warmup_s=0.3,
    window_s=1.0,
    drain_s=1.0,
    disturbed_attempts=1,
    rooms=20,
    idle_clients=500,
    storm_logins=6,
    storm_members=10,  # each logs in at cost 12: the slowest part of --quick
    history_messages=20_000,
    history_probes=50,
    timeline_members=20,
    timeline_moderate_deliveries=20_000,
)


@dataclass
class Context:
    """One run of the harness: its sizes, its cores, and what it has measured."""

    sizes: Sizes
    server_cores: tuple[int, ...]
    generator_cores: tuple[int, ...]
    with_chatroom: bool
    progress: Progress
    generator_workers: int = 1
    with_coalescing: bool = True  # the second baseline, in scenarios 1 and 2
    # Ladders already run, by (server label, scenario key): scenario 5 reuses
    # scenario 1's run on the SQLite file.
    ladders: dict[tuple[str, str], dict] = field(default_factory=dict)

    @property
    def generator_capacity(self) -> int:
        """How many cores the generator can use: its CPU share at saturation."""
        return min(self.generator_workers, len(self.generator_cores))

    def compared_specs(
        self, coalescing: bool = False, **chatroom_options: object
    ) -> list[ServerSpec]:
        """The plain bare baseline, the coalescing one where ``coalescing``
        asks for it (and the run did not skip it), and the real server."""
        specs = [servers.bare_spec()]
        if coalescing and self.with_coalescing:
            specs.append(servers.bare_spec(coalescing=True))
        if self.with_chatroom:
            specs.append(servers.chatroom_spec(**chatroom_options))
        return specs


# -- clients ------------------------------------------------------------------


def spread(count: int, among: int) -> set[int]:
    """``count`` indexes spread evenly over ``range(among)``."""
    count = min(count, among)
    return {(i * among) // count for i in range(count)} if count else set()


def fanout_clients(members: int, senders: int, sampled: int) -> list[ClientSpec]:
    """One room: every new account starts in lobby, its default room."""
    sending = spread(senders, members)
    receivers = [i for i in range(members) if i not in sending]
    sampling = {receivers[i] for i in spread(sampled, len(receivers))}
    return [
        ClientSpec(
            name=f"u{i:05d}",
            room=LOBBY,
            login_lines=(f"/register u{i:05d} {PASSWORD}",),
            sender=i in sending,
            sampled=i in sampling,
        )
        for i in range(members)
    ]


def room_clients(
    rooms: int, room_size: int, chatting: bool, prefix: str = "m"
) -> list[ClientSpec]:
    """``rooms`` rooms of ``room_size``; the first member creates the room
    (wave 0) before the others join it (wave 1). Chatting members make it their
    default room and all send; one per room parses timestamps."""
    clients = []
    for r in range(rooms):
        room = f"room{r:04d}"
        for m in range(room_size):
            name = f"{prefix}{r:04d}x{m:02d}"
            lines = [
                f"/register {name} {PASSWORD}",
                f"/c {room}" if m == 0 else f"/j {room}",
            ]
            if chatting:
                lines.append(f"/cd {room}")
            clients.append(
                ClientSpec(
                    name=name,
                    room=room if chatting else LOBBY,
                    login_lines=tuple(lines),
                    wave=0 if m == 0 else 1,
                    sender=chatting,
                    sampled=chatting and m == 1,
                )
            )
    return clients
