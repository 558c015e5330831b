"""Flow metrics, the Portfolio Kanban and completion forecasts: the pure core.

`history` holds what is read (status changes, items); `settings` what the config layer fills;
`facts` derives each item's flow facts once; `metrics`, `kanban` and `forecast` turn them into
results for any grouping (objective, Key Result, value stream). Nothing here does I/O or reads
the clock: `now`/`today` and the random generator are passed in.
"""
