"""Readers for evaluation and training datasets in their native on-disk layouts."""
