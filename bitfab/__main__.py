import sys

from bitfab.cli import main

sys.exit(main())
