"""Scenes: many images -> features, pairs, verified matches, a COLMAP database and a sparse model.

One module per stage (:mod:`.images`, :mod:`.features`, :mod:`.pairs` (+ :mod:`.retrieval`),
:mod:`.matching`, :mod:`.database`, :mod:`.mapping`), files in hloc's layout (:mod:`.store`),
tasks run by an executor (:mod:`.executor`), composed by :func:`.reconstruct.reconstruct`.
The scene code calls the two-view pipeline, never the other way round.
"""
