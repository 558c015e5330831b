"""Benchmarks and the fault-injection soak: the evidence behind spm-sync's speed and robustness.

`python -m bench [--quick]` runs every benchmark and writes `bench/results.json`;
`python -m bench.<name> [--quick]` runs one (`sandbox_start`, `engines`, `incremental`,
`rerank`, `full_sync`, `cycle`); `python -m bench.soak [--quick]` runs the soak;
`python -m bench.compare OLD.json NEW.json` compares two results files. See `bench/README.md`.

Method, shared by every benchmark (`bench.harness`):
- the sandbox trackers run in the orchestrating process; each measured run (spm-sync or the
  naive baseline) is a fresh worker subprocess (`bench.worker`) that talks HTTP to them;
- request counts come from the sandbox's own per-route counters, not from the client;
- peak memory is the peak RSS of the worker subprocess (`VmHWM` in /proc/self/status, its whole
  peak, interpreter and libraries included; see `bench.worker` for why not `ru_maxrss`), next
  to the RSS the worker had after its imports;
- spm-sync and the baseline alternate (S, B, S, B, S) and the table shows the median run.
"""
