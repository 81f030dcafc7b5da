"""Progress bars for the transfer commands: on standard error, only for a terminal."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_bar(
    *, total: int | None, unit: str, description: str, quiet: bool, **options: Any
) -> tqdm[Any]:
    """A tqdm bar with rate and ETA; disabled (a no-op) when quiet or not on a terminal, so
    logs and pipes never fill with carriage returns."""
    return tqdm(
        total=total,
        unit=unit,
        desc=description,
        file=sys.stderr,
        disable=quiet or not sys.stderr.isatty(),
        dynamic_ncols=True,
        smoothing=0.1,
        **options,
    )
