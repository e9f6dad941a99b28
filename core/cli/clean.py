"""`app clean`: remove what killed or interrupted runs left under $TUNEHUB_HOME."""
from __future__ import annotations

import click

from .output import emit_json, json_option, stdout_console, table


@click.command("clean")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@json_option
def clean(dry_run: bool, as_json: bool) -> None:
    """Remove leftovers of killed runs: unfinished artifacts (staging folders), deleted
    versions still on disk, and work folders of runs whose process is gone (including
    interrupted runs kept for --resume). Folders of running processes are never touched."""
    from ..artifacts.hub import home, human_size
    from ..running.workdirs import leftovers, remove

    found = leftovers()
    if not dry_run:
        remove(found)
    if as_json:
        emit_json({"home": str(home()), "dry_run": dry_run, "removed": [] if dry_run else
                   [str(f.path) for f in found],
                   "leftovers": [{"path": str(f.path), "kind": f.kind, "bytes": f.size}
                                 for f in found]})
        return
    console = stdout_console()
    if not found:
        console.print(f"nothing to clean under {home()}", markup=False)
        return
    verb = "would remove" if dry_run else "removed"
    console.print(table(f"{verb} under {home()}", ["kind", "folder", "size"],
                        [[f.kind, str(f.path.relative_to(home())), human_size(f.size)]
                         for f in found], keep=2))
    console.print(f"{verb} {len(found)} folder(s), {human_size(sum(f.size for f in found))}",
                  markup=False)


COMMANDS = [clean]
