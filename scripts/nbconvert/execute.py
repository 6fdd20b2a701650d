"""Executes a notebook with nbclient and writes it, outputs included, even when a cell fails.

usage: execute.py IN.ipynb OUT.ipynb KERNEL TIMEOUT
Exit 0 when every cell ran; exit 3 after writing the partly executed notebook when a cell failed
(execution stops at that cell, as nbconvert does); the failing cell's index is printed on stderr.
Runs under Debian's /usr/bin/python3 (jupyter-nbconvert brings nbclient and nbformat).
"""
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main(src, dst, kernel, timeout):
    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel, timeout=int(timeout), allow_errors=False)
    failed = None
    try:
        client.execute()
    except CellExecutionError:
        failed = last_executed(nb)
    nbformat.write(nb, dst)
    if failed is not None:
        print(f"failed-cell {failed}", file=sys.stderr)
        return 3
    return 0


def last_executed(nb):
    """Index of the last code cell that ran (the one that failed)."""
    last = None
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and c.get("execution_count") is not None:
            last = i
    return last


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
