"""`submitter report`: one self-contained HTML page of a project's run, from its state store."""

from submitter.report.html import render, write_report

__all__ = ["render", "write_report"]
