"""``python -m agent_rerun`` runs the ``rerun`` command line (no console script needed)."""

from agent_rerun.cli import main

if __name__ == "__main__":
    main()
