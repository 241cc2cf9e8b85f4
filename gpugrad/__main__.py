import sys

from gpugrad.cli import main

sys.exit(main())
