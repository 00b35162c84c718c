"""C{python -m chatroom.admin}: the same as C{chatroom-admin}."""

import sys

from chatroom.admin.cli import main

if __name__ == "__main__":
    sys.exit(main())
