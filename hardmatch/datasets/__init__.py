"""Readers for evaluation and training datasets in their native on-disk layouts.

Two-view pairs with ground truth: :mod:`.registry` (every layout, ``read_dataset``,
``detect_format``) over one module per layout family (:mod:`.cmp`, :mod:`.oxford` with
HPatches, :mod:`.evd`, :mod:`.wxbs`, :mod:`.pairs_file`, ...), sharing :mod:`.spec` (the
``PairSpec`` and ``Layout`` records), :mod:`.files` (small file loaders) and :mod:`.scoring`
(judging an estimated model against a pair's ground truth). Patch datasets for training:
:mod:`.patch_datasets`.
"""
