"""The bundle's program (see fph-desktop.spec): the same ``fph_desktop.cli:main`` that pip installs."""

import multiprocessing
import sys

from fph_desktop.cli import main

if __name__ == "__main__":
    # Data-loader worker processes are started by re-running this program where processes are spawned
    # (Windows, macOS); freeze_support() turns such a run into the worker.
    multiprocessing.freeze_support()
    sys.exit(main())
