"""`python -m spm_sync` is the `spm-sync` command."""

from __future__ import annotations

from spm_sync.cli.main import main

if __name__ == "__main__":
    main(prog_name="spm-sync")
