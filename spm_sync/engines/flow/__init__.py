"""Flow metrics, the Portfolio Kanban and completion forecasts: the pure core.

- what is read (status changes, items, the merge of items moved between keys) is
  `spm_sync.core.history`, shared with the connectors that produce it;
- `settings`: what the config layer fills (stages, WIP limits, active/wait statuses, flow
  classes, window, start definition);
- `chronology` and `statuses`: timestamps put right, and what each status name means;
- `facts`: each item's flow facts, derived once per run, with its problems (the reference
  walk); `fast_facts` and `history_arrays`: the same facts for many items at once, computed
  on arrays of their changes, the histories that need correcting left to `facts`;
- `metrics`, `kanban`, `forecast`: results for any grouping (objective, Key Result, value
  stream), the boards against their limits, and each objective's completion dates;
  `flow_table`: the metrics and forecast outlooks of many groups over item indexes, its
  facts as arrays (`flow_columns`) handed over by `fast_facts` or read from the flows.

Nothing here does I/O or reads the clock: `now`/`today` and the random generator are passed in.
"""
