"""``python -m esg``: the same command line as ``esg``."""

from esg.main import main

if __name__ == "__main__":
    main()
