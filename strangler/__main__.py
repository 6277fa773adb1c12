import sys

from strangler.cli import main

# Guarded: a spawned child process (the parity worker) imports this module as __mp_main__.
if __name__ == "__main__":
    sys.exit(main())
