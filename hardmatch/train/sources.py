"""Build training sources and validation sets from CLI-style arguments.

A source factory is ``make_source(seed) -> source`` with ``source.sample(n)`` (see
:mod:`hardmatch.train.trainer`); several sources are mixed batch by batch in proportion 1:1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import DatasetError


class MixedSource:
    """Alternates batches between several sources (each batch comes from one source)."""

    def __init__(self, sources, seed: int = 0) -> None:
        self.sources = list(sources)
        self.rng = np.random.default_rng(seed)

    def sample(self, n: int):
        return self.sources[int(self.rng.integers(len(self.sources)))].sample(n)


def make_source_factory(images=(), phototour: Path | None = None, hpatches: Path | None = None, synth=()):
    """A picklable ``make_source(seed)`` for the given data; raises DatasetError when none is given.

    ``synth``: ``NAME=VALUE`` options of the synthetic source (see
    :func:`hardmatch.train.synthetic.source_options`; ValueError when one is unknown or unreadable).
    """
    images = tuple(str(p) for p in images)
    if not images and phototour is None and hpatches is None:
        raise DatasetError("no training data: give --images FOLDER, --phototour FOLDER or --hpatches FOLDER")
    synth = tuple(synth)
    if synth and not images:
        raise DatasetError("--synth options need a synthetic source: give --images FOLDER")
    return _SourceFactory(images, phototour, hpatches, synth)


class _SourceFactory:
    def __init__(self, images, phototour, hpatches, synth=()) -> None:
        self.images, self.phototour, self.hpatches = images, phototour, hpatches
        from .synthetic import source_options

        self.synth_options = source_options(synth)  # parsed here: bad options fail before any worker starts
        self._entries = None  # the synthetic source's (image, frames) list once prepare() ran
        self._check()

    def prepare(self, processes: int) -> None:
        """Detect the synthetic source's keypoints once, with ``processes`` processes, so that every
        loader worker starts with them (each would otherwise detect every image itself)."""
        if self.images and processes > 1 and self._entries is None:
            from .synthetic import SyntheticPairs

            self._entries = SyntheticPairs(self.images, **self.synth_options).detect_all(processes)

    def _check(self) -> None:
        # fail early, in the main process, with the readers' own one-line errors
        self(0)

    def __call__(self, seed: int):
        import cv2

        cv2.setNumThreads(1)  # data workers share the CPU with the training process
        sources = []
        if self.images:
            from .synthetic import SyntheticPairs

            sources.append(SyntheticPairs(self.images, seed=seed, entries=self._entries, **self.synth_options))
        if self.phototour is not None:
            from ..datasets.patch_datasets import PhotoTour

            sources.append(PhotoTour(self.phototour, seed=seed))
        if self.hpatches is not None:
            from ..datasets.patch_datasets import HPatchesPatches

            sources.append(HPatchesPatches(self.hpatches, seed=seed))
        return sources[0] if len(sources) == 1 else MixedSource(sources, seed)


def make_validation(val_images=(), val_phototour: Path | None = None, num_pairs: int = 4000):
    """(patches1, patches2, is_match) from PhotoTour m50 pairs or synthetic held-out pairs, or None."""
    if val_phototour is not None:
        from ..datasets.patch_datasets import phototour_test_pairs

        return phototour_test_pairs(val_phototour)
    if val_images:
        from .validate import make_validation_set

        return make_validation_set([str(p) for p in val_images], num_pairs=num_pairs)
    return None
