"""`python -m pipeline …` entry point.

Inside a local Snakemake run the command is handed to the run's fork server (warm imports, see
pipeline/runtime/forkserver.py); without one, or when it refuses, it runs here.
"""

import os
import sys

from pipeline.runtime import forkserver

if __name__ == "__main__":
    # a torchrun rank runs here, in its own process (its process group, its GPU), never forked
    torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1
    code = None if torchrun else forkserver.forward(sys.argv[1:])
    if code is None:
        from pipeline.cli import main

        code = main()
    raise SystemExit(code)
