"""`python -m pipeline …` entry point."""

from pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
