import sys

from albench.cli import main

sys.exit(main())
