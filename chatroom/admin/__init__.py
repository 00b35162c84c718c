"""
C{chatroom-admin}: the administrator's command line, on the server's own
database (L{cli}).  It runs the transactions of L{chatroom.storage}
synchronously (L{runner}), one short transaction at a time, so it is safe
beside a running server.
"""
