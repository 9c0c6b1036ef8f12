"""Training logs: ``OUT/log.csv`` always, TensorBoard event files when asked (``--tensorboard DIR``).

Both get one entry per log point of the trainer, so their steps are the same: the loss (mean over
the steps since the previous log point), the learning rate of the step, pairs/s of that interval,
and at validation steps FPR95/FDR95 on the validation pairs. TensorBoard scalar tags:
``train/loss``, ``train/lr``, ``train/pairs_per_s``, ``val/fpr95``, ``val/fdr95`` (fractions, as
in the CSV). TensorBoard is an optional dependency (extra ``hardmatch[tensorboard]``); without it
:func:`require_tensorboard` raises a one-line :class:`~hardmatch.core.errors.HardmatchError` (exit 2).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..core.errors import HardmatchError

CSV_COLUMNS = ("step", "loss", "lr", "pairs_per_s", "elapsed_s", "fpr95", "fdr95")
#: TensorBoard tag of each logged value (validation tags only at validation steps)
TB_TAGS = {"loss": "train/loss", "lr": "train/lr", "pairs_per_s": "train/pairs_per_s",
           "fpr95": "val/fpr95", "fdr95": "val/fdr95"}


def require_tensorboard():
    """The ``SummaryWriter`` class; raises HardmatchError (one line, exit 2) when tensorboard is not installed."""
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it; checked by name for a clear message)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise HardmatchError(f"--tensorboard needs the tensorboard package (pip install 'hardmatch[tensorboard]'): "
                             f"{exc}") from None
    return SummaryWriter


class TrainingLog:
    """The trainer's log sink: CSV rows in ``out_dir/log.csv`` plus TensorBoard scalars in ``tensorboard_dir``.

    ``resume``: append to an existing CSV (else it is started with its header); TensorBoard events
    logged after ``start_step`` by an interrupted run are purged (``purge_step``), so a resumed
    run's curves do not overlap.
    """

    def __init__(self, out_dir: Path, resume: bool = False, tensorboard_dir: str | Path | None = None,
                 start_step: int = 0) -> None:
        self.csv_path = Path(out_dir) / "log.csv"
        self.writer = None
        if tensorboard_dir is not None:
            summary_writer = require_tensorboard()
            self.writer = summary_writer(log_dir=str(tensorboard_dir), flush_secs=10,
                                         purge_step=start_step + 1 if resume and start_step > 0 else None)
        if not (resume and self.csv_path.is_file()):
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(CSV_COLUMNS)

    def write(self, step: int, loss: float, lr: float, pairs_per_s: float, elapsed_s: float,
              fpr95: float | None = None, fdr95: float | None = None) -> None:
        """One log point: a CSV row (validation columns empty when not validated) and the TensorBoard scalars."""
        with open(self.csv_path, "a", newline="") as f:
            csv.writer(f).writerow([step, f"{loss:.5f}", f"{lr:.5f}", f"{pairs_per_s:.1f}", f"{elapsed_s:.1f}",
                                    "" if fpr95 is None else f"{fpr95:.5f}", "" if fdr95 is None else f"{fdr95:.5f}"])
        if self.writer is None:
            return
        values = {"loss": loss, "lr": lr, "pairs_per_s": pairs_per_s, "fpr95": fpr95, "fdr95": fdr95}
        for name, value in values.items():
            if value is not None:
                self.writer.add_scalar(TB_TAGS[name], value, global_step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
