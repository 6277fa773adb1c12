import sys

from strangler.cli import main

# Guarded: a spawned child process (a proxy worker's mirror) imports this module as __mp_main__.
if __name__ == "__main__":
    sys.exit(main())
