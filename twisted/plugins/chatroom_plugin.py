from twisted.application.service import ServiceMaker

chatroom = ServiceMaker(
    "chatroom",
    "chatroom.tap",
    "A multi-client chat server: rooms, accounts, history, TLS.",
    "chatroom",
)
