"""C{python -m chatroom.admin}: the same as C{chatroom-admin}."""

import sys

from chatroom.admin.cli import main

sys.exit(main())
