"""Command-line scripts that make data sets: ``python -m data_scripts.<module>``.

* ``fetch``: download (or take from ``--archive``), verify and prepare the real data sets
  (``python -m data_scripts.fetch --list``); the notebooks read them with
  :func:`kae_utils.data.real.load_real`. Its helpers: ``common`` (downloads, checksums, safe
  unpacking) and the converters ``cifar``, ``nyuv2``, ``finegrained``.
* ``make_offline``, ``bench_generators``: materialise and time the offline generated sets.
"""
