"""The stages and what drives them: pull (with context items and status history), align, score
and plan (`analysis`), apply, the flow and portfolio stages, the result document
(`cycle_document`), one cycle (`cycle`) and the schedule (`scheduler`).

Data flows one way: connectors -> store -> engines -> plan -> write-back -> report.
"""
