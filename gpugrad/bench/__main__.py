import sys

from gpugrad.bench.runner import main

sys.exit(main())
