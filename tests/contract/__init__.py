"""One contract every tracker connector passes, run against each tracker's sandbox."""
