"""Batch evaluation of pipelines on two-view datasets (``hardmatch eval``).

Modules, lowest first: :mod:`.specs` (pipeline specs and tasks), :mod:`.rows` (the row of one
pipeline on one pair), :mod:`.runner` (running tasks, serially or in a process pool),
:mod:`.store` (``results.jsonl`` and resuming, atomic writes), :mod:`.summary` (aggregation per
pipeline), :mod:`.report` (CSV, JSON, markdown and PNG outputs), :mod:`.progress` (the progress
bar) and :mod:`.evaluate` (:func:`~hardmatch.evaluation.evaluate.evaluate`, which ties them
together).
"""
