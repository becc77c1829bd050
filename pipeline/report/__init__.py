"""Reporting: the tables, metrics and plot data of a set of runs (`tables`), and the statistics
behind them (`stats`: mean ± sd over seeds, bootstrap intervals, Welch's t-test)."""

from pipeline.report.tables import collect, paper_tables, seed_table, write_report

__all__ = ["collect", "paper_tables", "seed_table", "write_report"]
