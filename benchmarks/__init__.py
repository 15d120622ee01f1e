"""Speed and memory benchmarks for recon-assets (not part of the tests).

``python -m benchmarks`` runs every row, each in a fresh subprocess, and prints a table; see
``docs/benchmarks.md``. ``benchmarks.fifo`` and ``benchmarks.diff`` are the two original
comparisons the rows build on.
"""
