"""The command line's one progress printer: status lines, a counter, and each epoch's summary.

On a terminal the counter rewrites one line; piped to a file or a CI log it prints a line at every
tenth of the way, so logs stay short. Everything goes to stderr; stdout is for results.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..progress import Progress


class ProgressPrinter:
    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._counter_open = False
        self._last_tenth = -1

    def progress(self) -> Progress:
        if self.quiet:
            return Progress()
        return Progress(on_status=self._status, on_progress=self._progress, on_partial=self._partial, min_interval=0.5)

    def _end_counter(self) -> None:
        if self._counter_open:
            print(file=self.stream, flush=True)
            self._counter_open = False

    def _status(self, text: str) -> None:
        self._end_counter()
        self._last_tenth = -1
        print(text, file=self.stream, flush=True)

    def _progress(self, done: int, total: int) -> None:
        if total <= 0:
            return
        if self.tty:
            print(f"\r  {done}/{total}", end="", file=self.stream, flush=True)
            self._counter_open = done < total
            if done >= total:
                print(file=self.stream, flush=True)
            return
        tenth = 10 * done // total
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            print(f"  {done}/{total}", file=self.stream, flush=True)

    def _partial(self, record) -> None:
        if not isinstance(record, dict) or record.get("kind") != "epoch":
            return
        self._end_counter()
        print(
            f"epoch {record['epoch']}/{record['epochs']}  loss {record['loss']:.4f}  val mAP {record['val_map']:.4f}  "
            f"({record['seconds']:.1f} s)",
            file=self.stream,
            flush=True,
        )

    def message(self, text: str) -> None:
        """A line that is neither status nor result (a note, a warning)."""
        self._end_counter()
        print(text, file=self.stream, flush=True)
