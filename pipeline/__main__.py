"""`python -m pipeline …` entry point.

Inside a local Snakemake run the command is handed to the run's fork server (warm imports, see
pipeline/runtime/forkserver.py); without one, or when it refuses, it runs here.
"""

import sys

from pipeline.runtime import forkserver

if __name__ == "__main__":
    code = forkserver.forward(sys.argv[1:])
    if code is None:
        from pipeline.cli import main

        code = main()
    raise SystemExit(code)
