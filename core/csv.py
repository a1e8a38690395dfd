"""The one CSV writer of the product: every CSV it writes (export_audit, the import's report of
rejected rows, the admin's exports) goes through here, so none can hand a spreadsheet a formula.

A cell a spreadsheet would run as a formula (one starting with `=`, `+`, `-`, `@`, a tab or a
carriage return: OWASP's "CSV injection") is written with a leading `'`, which keeps it text.
"""

import csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """The cell as text, neutralised when a spreadsheet would evaluate it. None is an empty cell."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeWriter:
    """csv.writer whose every cell goes through safe_cell. `writerow` returns what the file's
    `write` returned, so a file that hands the line back (see Echo) lets a response stream it."""

    def __init__(self, handle, **options):
        self._writer = csv.writer(handle, **options)

    def writerow(self, row):
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


class Echo:
    """A file for SafeWriter whose write() returns the line: for streaming responses."""

    def write(self, value):
        return value


def writer(handle, **options) -> SafeWriter:
    return SafeWriter(handle, **options)
