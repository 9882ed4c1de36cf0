import sys

from justering.cli.main import main

if __name__ == "__main__":  # not when a worker process (spawn) imports it
    sys.exit(main())
