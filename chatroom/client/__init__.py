"""
The bundled terminal client, C{chatroom-client HOST [PORT]}.

Layers, bottom up: L{lines} (the wire format), L{render} (what reaches the
screen), L{pinning} and L{connect} (how the server is reached and trusted),
L{protocol} (request/reply pairing), L{editor} and L{ui} (the terminal),
L{session} (login and commands), L{__main__} (the command line).
"""
