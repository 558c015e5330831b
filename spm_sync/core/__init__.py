"""The shared language of spm-sync: tracker-neutral domain types, status history, the result
document and its parts, exit codes, check lines, request figures and secret handling.

Everything else depends on this package and it depends on nothing of ours, so connectors and
reports can speak the domain without knowing the pipeline (the contract is checked by
import-linter in `make test`).
"""
