"""A polling source: new lines of a JSON Lines file, read every ``period`` seconds, resumed where it stopped.

The stream's DATASOURCE names the file inside ``folder``; confKeys hold ready-made settings:

    CREATE STREAM meters () WITH (TYPE="jsonl_tail", DATASOURCE="meters.jsonl", CONF_KEY="fast")

The position after the last line emitted is kept in ``ctx.state``: when the rule, the plugin or eKuiper
restarts, the source goes on with the next line (a line is emitted again only if the plugin is killed between
sending it and saving the position after it).

Export it with ``python -m ekdsl export examples/filetail/filetail.py --zip``.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any, Dict, Iterator, Optional

from ekdsl import Context, Param, Plugin, Row

plugin = Plugin("filetail", version="1.1.0", author="ekdsl",
                description="Rows from JSON Lines files that other programs append to.")


def _start(path: str, saved: Optional[Dict[str, Any]], from_start: bool) -> Dict[str, Any]:
    """Where to read from: the saved position in this same file, else its start or its end."""
    inode = os.stat(path).st_ino if os.path.exists(path) else None
    if saved and saved.get("path") == path and inode in (saved.get("inode"), None):
        return saved
    if from_start or inode is None:
        return {"path": path, "inode": inode, "offset": 0, "line": 0}
    with open(path, "rb") as fh:  # start at the end: only lines written from now on
        done = fh.read().rpartition(b"\n")[0]
    end = {"offset": len(done) + 1, "line": done.count(b"\n") + 1} if done else {"offset": 0, "line": 0}
    return {"path": path, "inode": inode, **end}


@plugin.source(conf_keys={"fast": {"period": 0.05}, "replay": {"fromStart": True}})
def jsonl_tail(
    ctx: Context,
    datasource: str = "data.jsonl",
    folder: Annotated[str, Param(hint="Folder of the files; DATASOURCE names one of them")] = "/tmp",
    period: Annotated[float, Param(hint="Seconds between two looks at the file")] = 1.0,
    from_start: Annotated[bool, Param(hint="On the first start, also emit the lines already in the file",
                                      name="fromStart")] = False,
) -> Iterator[Row]:
    """Emit each new line of a JSON Lines file as a row, with its line number in meta; after a restart, go on
    with the line after the last one emitted."""
    path = os.path.join(folder, datasource)
    pos = _start(path, ctx.state.get("position"), from_start)
    while True:
        if os.path.exists(path):
            inode = os.stat(path).st_ino
            if os.path.getsize(path) < pos["offset"] or inode != pos["inode"]:  # truncated or replaced
                pos = {"path": path, "inode": inode, "offset": 0, "line": 0}
            with open(path, "rb") as fh:
                fh.seek(pos["offset"])
                for raw in fh:
                    if not raw.endswith(b"\n"):
                        break  # a line still being written: read it next time
                    pos = {**pos, "offset": pos["offset"] + len(raw), "line": pos["line"] + 1}
                    try:
                        row = json.loads(raw)
                    except ValueError:
                        ctx.logger.warning("%s:%d is not JSON; skipped", path, pos["line"])
                        row = None
                    if isinstance(row, dict):
                        yield Row(row, meta={"file": path, "line": pos["line"]})
                    ctx.state.put("position", pos)  # once the row is sent: a restart goes on after it
        ctx.sleep(period)  # raises Stopped when the rule stops: the generator ends here
