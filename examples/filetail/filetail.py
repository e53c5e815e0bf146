"""A polling source: new lines of a JSON Lines file, read every ``period`` seconds.

The stream's DATASOURCE names the file inside ``folder``; confKeys hold ready-made settings:

    CREATE STREAM meters () WITH (TYPE="jsonl_tail", DATASOURCE="meters.jsonl", CONF_KEY="fast")

Export it with ``python -m ekdsl export examples/filetail/filetail.py --zip``.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Iterator

from ekdsl import Context, Param, Plugin, Row

plugin = Plugin("filetail", version="1.0.0", author="ekdsl",
                description="Rows from JSON Lines files that other programs append to.")


@plugin.source(conf_keys={"fast": {"period": 0.05}, "replay": {"fromStart": True}})
def jsonl_tail(
    ctx: Context,
    datasource: str = "data.jsonl",
    folder: Annotated[str, Param(hint="Folder of the files; DATASOURCE names one of them")] = "/tmp",
    period: Annotated[float, Param(hint="Seconds between two looks at the file")] = 1.0,
    from_start: Annotated[bool, Param(hint="Also emit the lines already in the file",
                                      name="fromStart")] = False,
) -> Iterator[Row]:
    """Emit each new line of a JSON Lines file as a row, with its line number in meta."""
    path = os.path.join(folder, datasource)
    offset = line_no = 0
    if not from_start and os.path.exists(path):  # start at the end: only lines written from now on
        with open(path, "rb") as fh:
            done = fh.read().rpartition(b"\n")[0]
        offset, line_no = len(done) + 1 if done else 0, done.count(b"\n") + 1 if done else 0
    while True:
        if os.path.exists(path):
            if os.path.getsize(path) < offset:  # truncated or replaced: start again
                offset, line_no = 0, 0
            with open(path, "rb") as fh:
                fh.seek(offset)
                for raw in fh:
                    if not raw.endswith(b"\n"):
                        break  # a line still being written: read it next time
                    offset += len(raw)
                    line_no += 1
                    try:
                        row = json.loads(raw)
                    except ValueError:
                        ctx.logger.warning("%s:%d is not JSON; skipped", path, line_no)
                        continue
                    if isinstance(row, dict):
                        yield Row(row, meta={"file": path, "line": line_no})
        ctx.sleep(period)  # raises Stopped when the rule stops: the generator ends here
