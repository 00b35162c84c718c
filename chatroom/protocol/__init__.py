"""Front ends: bytes and lines in, calls on the chat service's avatars out."""
