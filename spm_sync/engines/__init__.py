"""The pure engines: alignment to OKRs, WSJF scoring, write planning, backlog ranking, WIP
lanes, flow metrics (`flow`) and the portfolio core (`portfolio`).

No I/O, no clock, no HTTP: the pipeline passes in stored items and plain settings and gets
values back, which keeps every rule testable on hand-built inputs.
"""
