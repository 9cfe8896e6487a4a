"""The `vigil` executable: `vigil hunt` starts without the rest of the platform.

A hunt over a folder of logs is often a matter of a second or two (like Chainsaw or Hayabusa), while
importing every command group (the web app, the records store, every domain's schemas) takes longer
than that. So `vigil hunt ...` loads only the hunt command; every other command loads the whole CLI.
"""

from __future__ import annotations

import sys


def main() -> None:
    # Imports inside the function on purpose: which one is imported is the whole point (start-up time).
    if len(sys.argv) > 1 and sys.argv[1] == "hunt":
        from vigil.detection.cli import run_and_exit

        run_and_exit()
    else:
        from vigil.cli.main import app

        app()


if __name__ == "__main__":
    main()
