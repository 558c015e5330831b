"""OKRs that measure themselves, capacity against demand, and dependency risk: the pure core.

- `okr_tree`: objectives and Key Results from the OKR file and from tracker items, merged into
  one tree; conflicts between the two, cycles and orphan Key Results are reported, never
  silently resolved;
- `measures`: a Key Result's current value from its query (count, sum of a field, share done)
  or left manual, and its progress by the one baseline-to-target rule of the report;
- `rollup`: objective progress and confidence from weighted Key Results, with the aligned work
  and its job size per objective;
- `capacity`: per team and planning interval, the cut line where capacity runs out in the
  WSJF-ranked demand, what is below it that matters and what is worked on below it;
- `dependencies`: items ranked above what they depend on, items blocked by unfinished orphan
  work, and dependency cycles, each with its chain.

Nothing here does I/O or reads the clock; every problem is a row with a reason, never a crash.
"""
