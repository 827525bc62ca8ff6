"""Start the vis2mus-live performance server (same as the ``vis2mus-live`` console script)."""

import sys

from live.app.server import main

if __name__ == "__main__":
    sys.exit(main())
