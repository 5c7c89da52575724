"""``python -m runq`` is the ``runq`` command."""

from runq.cli import main

main()
