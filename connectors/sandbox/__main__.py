"""`python -m connectors.sandbox [--items N] [--seed S] [--host H] [--jira-port P] [--ado-port P]`:
the same as `spm-sync sandbox`, without the rest of spm-sync."""

from __future__ import annotations

import argparse

from connectors.sandbox.cli import serve_sandboxes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.sandbox",
        description="Serve the Jira and Azure DevOps sandboxes with a seeded portfolio.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--jira-port", type=int, default=0)
    parser.add_argument("--ado-port", type=int, default=0)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    return serve_sandboxes(
        host=args.host,
        jira_port=args.jira_port,
        ado_port=args.ado_port,
        items=args.items,
        seed=args.seed,
    )


if __name__ == "__main__":
    raise SystemExit(main())
