"""The `spm-sync` command line: argument parsing (`main`), the commands that drive the
pipeline and print what happened (`commands`, `demo`, `offline_check`, `online_check`), and where
the words go (`terminal`, `summary`)."""
