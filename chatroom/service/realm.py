"""The realm: turns an authenticated avatar id into a session of the chat."""

from __future__ import annotations

from twisted.cred.portal import IRealm
from twisted.internet import defer
from zope.interface import implementer

from chatroom.service.avatar import Session
from chatroom.service.chat import ChatService
from chatroom.service.interfaces import IAccountRules, IChatClient, IUser


@implementer(IRealm)
class ChatRealm:
    def __init__(self, chat: ChatService, admission: IAccountRules) -> None:
        self.chat = chat
        self.admission = admission

    def requestAvatar(self, avatarId: int, mind: IChatClient, *interfaces):
        if IUser not in interfaces:
            raise NotImplementedError("chatroom only hands out IUser avatars")
        session = Session(self.chat, self.admission, mind, getattr(mind, "peer", "?"))
        d = defer.ensureDeferred(session.attach(avatarId))
        return d.addCallback(lambda session: (IUser, session, session.logout))
