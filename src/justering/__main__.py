import sys

from justering.cli import main

sys.exit(main())
