"""``torchrun --nproc_per_node=N -m fph_desktop.train --data ...``: the train subcommand, one process per rank."""

import sys

from ..cli import main

sys.exit(main(["train", *sys.argv[1:]]))
