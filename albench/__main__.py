import sys

from albench.cli import main

if __name__ == "__main__":
    sys.exit(main())
