"""
The admission gate: who may come in, and under which name and password.

Every front end registers, logs in, renames and changes passwords through
it, so the rules are written once: valid and reserved names, the password
rules, the growing delay after failed logins (per address; a name under
attack is only slowed), and
the rate of new accounts per address.  It owns the twisted.cred portal: a
front end hands over a name, a password and its mind, and gets the avatar.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import task
from twisted.logger import Logger
from zope.interface import implementer

from chatroom.auth import (
    AccountSuspendedLogin,
    BcryptChecker,
    NewAccount,
    PasswordLogin,
    RegistrationChecker,
)
from chatroom.errors import (
    AccountSuspended,
    AuthFailed,
    ChatError,
    NameTaken,
    PermissionDenied,
    RateLimited,
)
from chatroom.names import (
    RESERVED_NAMES,
    check_name,
    check_password,
    name_key,
)
from chatroom.service.chat import ADMIN, Account, ChatService
from chatroom.service.guest import GuestSession, check_not_online
from chatroom.service.interfaces import IAccountRules, IChatClient, IUser
from chatroom.service.realm import ChatRealm
from chatroom.service.throttle import LoginThrottle, RegistrationLimit, address_block
from chatroom.storage.store import UserRecord, check_name_free

# Seconds a refused password try waits for its refusal, at most.
REFUSAL_HOLD = 1.0


class Admitted(NamedTuple):
    """A session let in: the avatar to call, and how to end it."""

    avatar: IUser
    logout: object


@implementer(IAccountRules)
class Admission:
    """
    The one way in.

    @param throttle: failed logins, counted per address and per name.
    @param registrations: new accounts per address; None for no limit.
    @param operators: names of the accounts, besides the admin, whose
        password makes a session a server operator (IRC's OPER).
    """

    log = Logger()

    def __init__(
        self,
        chat: ChatService,
        throttle: LoginThrottle | None = None,
        registrations: RegistrationLimit | None = None,
        operators: Iterable[str] = (),
    ) -> None:
        self.chat = chat
        self.operators = frozenset(name_key(name) for name in operators)
        self.throttle = throttle if throttle is not None else LoginThrottle(chat.clock)
        self.registrations = registrations
        # Name keys of accounts being made, held until their session is
        # online: nobody takes one while its password is hashed.
        self._registering: set[str] = set()
        self.passwords = BcryptChecker(chat, chat.hasher)
        self.portal = Portal(
            ChatRealm(chat, self),
            [self.passwords, RegistrationChecker(chat, chat.hasher)],
        )

    # Coming in

    async def login(
        self, name: str, password: str, mind: IChatClient, peer: str
    ) -> Admitted:
        """Log in to the account C{name}; L{AuthFailed} after the delay it earns."""
        # No account has an invalid name: refusing it keeps junk out of the logs.
        check_name(name)
        await self._check_throttle(peer)
        await self._slow_down_for(name)
        try:
            _, avatar, logout = await self.portal.login(
                PasswordLogin(name, password, address_block(peer)), mind, IUser
            )
        except AccountSuspendedLogin as refused:
            await self._refused_suspended(name, peer, refused.user_id)
        except UnauthorizedLogin as failure:
            await self._failed(name, peer, getattr(failure, "user_id", None))
            raise AuthFailed() from None
        self.throttle.succeeded(name)
        return Admitted(avatar, logout)

    async def check_operator(self, name: str, password: str, peer: str) -> UserRecord:
        """
        Check the password of the operator account C{name} as a login is
        checked (throttled, slowed after failures); its record.
        L{AuthFailed} for a wrong name or password, L{PermissionDenied} for
        an account that is not an operator's.
        """
        check_name(name)
        await self._check_throttle(peer)
        await self._slow_down_for(name)
        try:
            user_id = await self.passwords.requestAvatarId(
                PasswordLogin(name, password, address_block(peer))
            )
        except AccountSuspendedLogin as refused:
            await self._refused_suspended(name, peer, refused.user_id)
        except UnauthorizedLogin as failure:
            await self._failed(name, peer, getattr(failure, "user_id", None))
            raise AuthFailed() from None
        self.throttle.succeeded(name)
        record = await self.chat.store.get_user(user_id)
        if not record.is_admin and name_key(record.name) not in self.operators:
            raise PermissionDenied(f"{record.name} is not a server operator")
        return record

    async def register(
        self,
        name: str,
        password: str,
        mind: IChatClient,
        peer: str,
        guest: GuestSession | None = None,
    ) -> Admitted:
        """
        Create the account C{name} and log in to it.  A C{guest} registering
        its own name becomes the account: once the password is hashed, the
        guest session ends quietly, and the account's session is in the
        guest's rooms when this returns, its members told nothing (the same
        name was there all along) but of a room it could not keep.
        """
        # What costs nothing is checked first: a typo or a taken name spends
        # none of the address's registrations.
        await self.check_new_account(name, password, guest)
        self._check_registration_rate(peer, spend=True)
        key, party = name_key(name), address_block(peer)
        self._registering.add(key)
        rooms: list = []
        try:
            password_hash = await self.chat.hasher.hash(password, party)
            if guest is not None:
                rooms = guest.hand_over()
            _, avatar, logout = await self.portal.login(
                NewAccount(name, password, party, password_hash), mind, IUser
            )
        except Exception as e:
            # Handed over for nothing: the guest's rooms see it go after all.
            if rooms:
                reason = e.message if isinstance(e, ChatError) else "server error"
                guest.quit_from(rooms, f"Registration failed: {reason}")
            raise
        finally:
            self._registering.discard(key)
        self.throttle.registered(name, peer)
        await avatar.keep_rooms(rooms)
        return Admitted(avatar, logout)

    async def guest(self, name: str, mind: IChatClient, peer: str) -> Admitted:
        """
        Let in a guest called C{name}: no account, and a name that is no
        account's (nor kept for one) and nobody's online.  Whether guests
        are let in at all is the front end's option to say.
        """
        await self.check_guest_name(name)
        session = GuestSession(self.chat, self, mind, peer).attach_guest(name)
        return Admitted(session, session.logout)

    async def check_guest_name(self, name: str, account: Account | None = None) -> None:
        """Raise unless a guest (C{account}, if it is one already) may be C{name}."""
        check_name(name)
        self._check_not_reserved(name)
        holder = await self.chat.store.find_name_holder(name_key(name))
        if holder is not None or name_key(name) in self._registering:
            raise NameTaken(f"{name} is an account's name: log in to use it")
        check_not_online(self.chat, name, account)

    async def is_known(self, name: str, peer: str) -> bool:
        """
        For the interactive login: whether C{name} is an account (a password
        follows), or a name that may be registered from C{peer} now.
        """
        check_name(name)
        holder = await self.chat.store.find_name_holder(name_key(name))
        if holder is not None and not holder.former:
            return True
        # Another account's former name can be neither logged in to nor taken.
        check_name_free(holder, name, None)
        self._check_not_reserved(name)
        # Before a password is asked for that could not be used.
        self._check_registration_rate(peer, spend=False)
        return False

    async def check_new_account(
        self, name: str, password: str, guest: GuestSession | None = None
    ) -> None:
        """
        Raise what registering would, short of a race: it costs no hash.
        C{guest}, registering, may take the name it holds.
        """
        check_name(name)
        check_password(password)
        self._check_not_reserved(name)
        key = name_key(name)
        # The rule the write checks again in its transaction, against a race.
        holder = await self.chat.store.find_name_holder(key)
        check_name_free(holder, name, None)
        # Checked last, in the turn that registering holds the name from.
        if key in self._registering:
            raise NameTaken(f"{name} is being registered")
        # A guest online holds its name while connected.
        online = self.chat.online_by_key.get(key)
        if online is not None and online.is_guest:
            if guest is None or online is not guest.account:
                raise NameTaken(f"{name} is in use")

    # Changing name and password

    def check_rename(self, account: Account, name: str) -> None:
        """Raise unless C{account} may take the name C{name}."""
        check_name(name)
        key = name_key(name)
        if account.is_admin and key != ADMIN:
            # Start-up finds the admin by this name; renamed, it would get a twin.
            raise PermissionDenied("the admin account keeps its name")
        if key != account.key:
            self._check_not_reserved(name)
            # Storage decides between accounts; a guest online it never knew.
            check_not_online(self.chat, name, account)

    async def change_password(
        self, account: Account, old: str, new: str, peer: str
    ) -> None:
        """
        Check C{old} like a login (throttled), then store a hash of C{new} in
        place of the hash C{old} matched: if another change got there first,
        L{AuthFailed} and nothing changes.
        """
        await self._check_throttle(peer)
        check_password(new)
        await self._slow_down_for(account.name)
        chat, party = self.chat, address_block(peer)
        record = await chat.store.get_user(account.id)
        if not await chat.hasher.verify(old, record.password_hash, party):
            chat.record(account.id, account.name, "password-change-failed")
            await self._slow_down(account.name, peer, known=True)
            raise AuthFailed("the current password is wrong")
        new_hash = await chat.hasher.hash(new, party)
        await chat.store.change_password_hash(
            account.id, record.password_hash, new_hash
        )
        chat.record(account.id, account.name, "password-change")

    # The rules

    def _check_not_reserved(self, name: str) -> None:
        if name_key(name) in RESERVED_NAMES:
            raise NameTaken(f"{name} is reserved")

    async def _check_throttle(self, peer: str) -> None:
        """
        Refuse, unchecked, a password try from an address that failed too
        recently: parallel tries gain nothing.  The refusal itself is held a
        moment (L{REFUSAL_HOLD}), so a flood of them costs the flooder time
        rather than costing the server a connection and a reply each.
        """
        wait = self.throttle.wait_time(peer)
        if wait > 0:
            await task.deferLater(self.throttle.clock, min(wait, REFUSAL_HOLD))
            raise RateLimited(
                f"too many failed logins: try again in {math.ceil(wait)} s"
            )

    async def _refused_suspended(self, name: str, peer: str, user_id: int) -> None:
        # The password was right: not a failure the throttle counts.
        await self.chat.record(user_id, name, "login-refused-suspended", peer)
        raise AccountSuspended()

    async def _failed(self, name: str, peer: str, user_id: int | None) -> None:
        # Recorded before the reply, so whoever reads the log next sees it.
        await self.chat.record(user_id, name, "login-failed", peer)
        await self._slow_down(name, peer, known=user_id is not None)

    async def _slow_down_for(self, name: str) -> None:
        """Hold a check of a name that others failed on: slowed, not refused."""
        delay = self.throttle.slowdown(name)
        if delay > 0:
            await task.deferLater(self.throttle.clock, delay)

    async def _slow_down(self, name: str, peer: str, known: bool) -> None:
        """Count a wrong password and hold its reply for the growing delay."""
        delay = self.throttle.failed(name, peer, known)
        if delay > 0:
            await task.deferLater(self.throttle.clock, delay)

    def _check_registration_rate(self, peer: str, spend: bool) -> None:
        """
        Refuse a new account, before it costs a hash, from an address that
        has made too many lately; with C{spend}, count this one.
        """
        limit = self.registrations
        if limit is None:
            return
        wait = limit.take(peer) if spend else limit.wait_time(peer)
        if wait > 0:
            self.log.warn("refused a new account from {peer}: too many", peer=peer)
            raise RateLimited(
                "too many new accounts from your address:"
                f" try again in {math.ceil(wait)} s"
            )
