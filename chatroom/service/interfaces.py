"""
The roles of the chat service, after twisted.words: a front end logs in
through the portal and gets an L{IUser} avatar to call; the service calls
back into the front end's L{IChatClient} (the mind).  Rooms and users only
know avatars and minds, never bytes.
"""

from zope.interface import Attribute, Interface


class IChatClient(Interface):
    """A connection the service delivers to: the mind of twisted.cred."""

    def room_message(message):
        """
        Deliver a L{RoomMessage} from someone else in a room we are in.

        A class may also have a C{room_fan}: called with a tuple of its
        instances in one room, it makes what delivers the room's messages
        to all of them, C{deliver(message, exclude, failed)}, kept until
        the room's members change (L{chatroom.service.fanout.OneByOne} is
        what is done without one; L{chatroom.protocol.output.RoomFan} lets
        their outputs share a turn's messages).
        """

    def private_message(message):
        """Deliver a L{PrivateMessage} addressed to us."""

    def notice(text):
        """Deliver a notice: server news."""

    # Optional: tag_message(message), a L{TagMessage} (client-only tags, no
    # text) for a front end that shows tags; others lack it and never get one.
    # Optional: e2e_message(message), an L{E2EMessage} (a ciphertext) for the
    # device this session published (chatroom.service.e2e), for a front end
    # that can publish one; others lack it and never get one.
    # Optional: operator_revoked(reason), the session is a server operator
    # no more (L{IUser.operator_revoked}), for a front end that has them.

    def membership(event):
        """
        Deliver a L{Membership} change in a room we are in; a front end that
        has no such event shows C{event.text} as a notice.
        """

    def away_changed(event):
        """
        Deliver an L{AwayChanged}: someone in a room we are in went away or
        came back; a front end that does not show it ignores it.
        """

    def disconnect(reason):
        """Close the connection after telling the client C{reason}."""

    def drained():
        """
        A Deferred that fires with True once what is queued for the client is
        below the soft limit (at once if it is), or with False if the
        connection closes first: how the service paces what it sends.
        """


class IReadMarkers(Interface):
    """A mind that shows read markers (IRCv3 read-marker); optional."""

    def read_marker_moved(target, at):
        """Another session of the account marked C{target} read up to C{at} (ms)."""


class IUser(Interface):
    """
    The avatar: one logged-in session of an account, and the chat actions
    every front end calls.  Each returns a plain result (see
    L{chatroom.service.results}) or raises L{chatroom.errors.ChatError} with
    a code, for the front end to render in its own syntax.  Methods that
    touch storage are coroutines.
    """

    name = Attribute("The account's current name.")
    is_admin = Attribute("Whether the account may run admin commands.")

    def logged_in():
        """The front end has confirmed the login: deliver what was kept."""

    def say(room, text, kind="message", tags=None):
        """
        Send C{text} to C{room}, or the default room if C{room} is None;
        return the L{RoomMessage} once it is stored and handed over.
        C{kind} is C{events.MESSAGE}, C{events.NOTICE} or C{events.ACTION}:
        shown live, history keeps only the text.  C{tags}: client-only tags passed on
        with it, never stored.
        """

    def say_to_status(room, status, text, kind="message", tags=None):
        """
        Send C{text} to C{room}'s operators (C{status} C{"@"}) or its voiced
        and operators (C{"+"}), checked as L{say}; never stored.  Return the
        L{StatusMessage} once handed over.
        """

    def send_private(recipient, text, kind="message", tags=None):
        """
        Send C{text} to the user named C{recipient}, online or not; return
        the stored L{PrivateMessage}.  To oneself, every session of the
        account gets it, the sending one too.
        """

    def send_tags(room, recipient, tags):
        """
        Pass client-only C{tags} with no text to C{room}'s members (or, if
        C{room} is None, to the online user C{recipient}); nothing is stored.
        Return the L{TagMessage}.
        """

    def publish_keys(device, identity, prekey, signature):
        """
        Add or replace the account's device C{device} with these public keys
        (base64; the signature checked) and make this session that device;
        return its L{DeviceKeys}.  The front end then calls
        L{deliver_waiting_e2e}, once it has said so.
        """

    def deliver_waiting_e2e():
        """Deliver the ciphertexts waiting for this session's device."""

    def device_keys(user):
        """The L{DeviceKeys} of C{user}'s devices (None: our own)."""

    def remove_device(device):
        """Remove the account's device and what waits for it; return its name."""

    def send_e2e(user, device, msgid, ciphertext):
        """
        Store a ciphertext for C{user}'s C{device}, then hand it to the
        sessions that are that device (and a placeholder to the others);
        return the L{E2EMessage} once stored.
        """

    def set_away(text):
        """
        Mark the account away with C{text}, or back if it is None or empty;
        its rooms are told (L{IChatClient.away_changed}).
        """

    def room_list():
        """
        A L{RoomListing} of every room we may see: all but the secret ones
        we are not in.
        """

    def whois(name):
        """
        The L{Whois} of the user C{name}: online or last seen, idle time,
        away text, and their rooms we may see.
        """

    def create_room(room):
        """Create C{room} and join it; return its name."""

    def join(room):
        """Join C{room}; return its name as stored."""

    def leave(room, reason=None):
        """Leave C{room}, saying C{reason} to its members; return its name."""

    def set_default(room):
        """Make C{room}, which we are in, the default room."""

    def rooms():
        """The L{JoinedRoom}s of our account."""

    def who(room):
        """
        The L{Member}s of C{room}, which we are in, with their role and
        presence.
        """

    def history(room, count):
        """The L{History} of C{room} (we are in it): its last C{count} messages."""

    def activity(user, count):
        """The last C{count} activity entries of C{user} (None for our own)."""

    def all_rooms():
        """Admin: a L{RoomSummary} of every room."""

    def all_users():
        """Admin: a L{UserSummary} of every account."""

    def release_name(name):
        """Admin: free C{name}, a former name kept for its account; return it."""

    def suspend(name):
        """Admin: suspend C{name} (no login) and end its sessions; return it."""

    def restore(name):
        """Admin: let the suspended C{name} log in again; return it."""

    def disconnect_user(name):
        """Admin: end every session of C{name}, on every node; return it."""

    def reset_password(name, password):
        """Admin: give C{name} the password C{password}, ending its sessions."""

    def broadcast(text):
        """Admin: show C{text} to everyone online, on every node."""

    def rename(name):
        """
        Change the account's name (the admission gate's rules); the old one
        stays the account's until released.  Return the new name.
        """

    def change_password(old, new):
        """Change the password after checking the old one, as a login is."""

    def logout(reason=None):
        """End this session; a guest's rooms hear it quit with C{reason}."""

    operator = Attribute(
        "The operator account this session became a server operator as, or None."
    )

    def become_operator(name, password):
        """Become a server operator with the operator account C{name}'s password."""

    def stop_operating():
        """Be a server operator no more."""

    def operator_revoked(reason):
        """
        Be a server operator no more, as the service decided (the operator
        account's password or name changed): the mind is told.
        """

    def kill(name, reason):
        """End every session here of the user C{name} (operators only)."""

    def wallops(text):
        """C{text} as an operator's WALLOPS may show it; L{BadText} if empty."""


class IAccountRules(Interface):
    """
    What a session asks the admission gate before it changes its account's
    name or password (L{chatroom.service.admission.Admission} provides it).
    """

    def check_rename(account, name):
        """Raise a L{ChatError} unless C{account} may take the name C{name}."""

    def change_password(account, old, new, peer):
        """Check C{old} as a login is checked, then store a hash of C{new}."""

    def check_operator(name, password, peer):
        """Check an operator account's password as a login is; its record."""


class IFanout(Interface):
    """
    Delivery to the sessions listening on a channel: a room, or one user's
    sessions.  In-process today; a Redis-backed one spreads it over nodes.
    Channels are hashable keys: C{("room", room_id)} or C{("user", user_id)}.
    """

    def subscribe(channel, client):
        """Deliver what is published on C{channel} to the L{IChatClient}."""

    def unsubscribe(channel, client):
        """Stop delivering C{channel} to C{client}."""

    def publish(channel, event, exclude=None):
        """
        Hand C{event} (it has C{deliver(client)}) to every subscriber of
        C{channel} but C{exclude}.  A Deferred that fires once handed over:
        at once in-process, once the bus has it across nodes.
        """

    def publish_kept(user_id, message):
        """
        Hand a L{PrivateMessage} stored as kept, or an L{E2EMessage} stored
        as waiting for its device, to the recipient's sessions on the other
        nodes, which mark it delivered.  A Deferred, as L{publish}; in-process
        there are no other nodes.
        """

    def subscribers(channel):
        """The local subscribers of C{channel}."""


class ISequencer(Interface):
    """Numbers the messages of each room, so every member sees one order."""

    def resume(rooms):
        """
        The rooms as storage holds them at start-up: number each after the
        last it used.  A Deferred that fires once numbering may start.
        """

    def next_seq(room):
        """A Deferred firing with the sequence number of C{room}'s next message."""

    def seq_unused(room, seq):
        """Number C{seq} of C{room} will carry no message: its write failed."""


class IPresence(Interface):
    """Who is online on the other nodes, and this node's share of it."""

    def came_online(user_id):
        """The account's first session on this node came online."""

    def went_offline(user_id):
        """The account's last session on this node went away."""

    def is_online_elsewhere(user_id):
        """Whether the account has a session on another node."""


class IMembershipBus(Interface):
    """
    Tells the other nodes of membership changes this node has stored, so they
    apply them to their directories.  Called once the change is in memory here.
    """

    def look_up_room(key):
        """
        A Deferred firing with the L{Room} whose name key is C{key} if another
        node has created it and this one has not heard yet (it is then in the
        directory, with its members), or None.
        """

    def tell_joined(room, user_id, user_name):
        """C{user_id} (called C{user_name}) is now a member of C{room}."""

    def tell_left(room, user_id):
        """C{user_id} is no longer a member of C{room}."""

    def tell_renamed(user_id, new_name):
        """The account C{user_id} is now called C{new_name}."""

    def tell_default_changed(user_id, room_id):
        """The account's default room is now C{room_id} (None for none)."""

    def tell_password_changed(user_id):
        """The account's password changed: its sessions elsewhere must end."""

    def tell_sessions_ended(user_id, reason):
        """An admin ended the account's sessions: those elsewhere end too."""

    def tell_broadcast(text):
        """An admin's notice, for everyone online elsewhere."""

    def tell_room_state(room):
        """C{room}'s moderation state (L{RoomModes}) changed: here is all of it."""

    def tell_room_deleted(room):
        """C{room} is deleted (its members put out already)."""

    def tell_away(user_id, text):
        """The account is away with C{text}, or back (None)."""
