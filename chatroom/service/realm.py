"""The realm: turns an authenticated avatar id into a session of the chat."""

from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from zope.interface import implementer

from chatroom.auth import BcryptChecker, RegistrationChecker
from chatroom.service.avatar import Session
from chatroom.service.chat import ChatService
from chatroom.service.interfaces import IChatClient, IUser


@implementer(IRealm)
class ChatRealm:
    def __init__(self, service: ChatService) -> None:
        self.service = service

    def requestAvatar(self, avatarId: int, mind: IChatClient, *interfaces):
        if IUser not in interfaces:
            raise NotImplementedError("chatroom only hands out IUser avatars")
        session = Session(self.service, mind, getattr(mind, "peer", "?"))
        d = defer.ensureDeferred(session.attach(avatarId))
        return d.addCallback(lambda session: (IUser, session, session.logout))


def chat_portal(service: ChatService) -> Portal:
    """A portal that logs in with name and password, or registers."""
    return Portal(
        ChatRealm(service),
        [BcryptChecker(service, service.hasher), RegistrationChecker(service)],
    )
