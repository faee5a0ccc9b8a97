"""kae_tools: the repository's tooling, beside (never inside) the notebooks' library :mod:`kae_utils`.

One console command, ``kae`` (:mod:`kae_tools.__main__`; also ``python -m kae_tools``): ``kae run``,
``kae sweep``, ``kae seeds``, ``kae readme``, ``kae pair``, ``kae clean``, ``kae zoo``.

Layers (arrows point down only; ``kae_utils`` never imports ``kae_tools``)::

    __main__          the `kae` command: one subcommand per tool
    readme            the generated blocks of README.md and docs/*.md (index, sweeps, TSVs, zoo, envelope)
    envelope          the reproduction envelope: per claim, the paper's, upstream's and our effects
    runner/cli        `kae run`, `kae sweep`: options, plan, summary
    runner/sweep      sweep files, their plan, records and --resume
    runner/schedule   many runs on an engine, records back in order
    runner/executors  engines: local thread pool, Dask, SLURM
    runner/execute    one papermill run in its own process group (and the worker it starts)
    runner/tables     results.tsv, summary.tsv, plot.png
    runner/console    log lines, the summary table, the timings file
    runner/spec       RunSpec, RunResult, parameters and claims
    notebooks/        catalog (notebook names, code_sha), nbclean (metadata), pairing (jupytext text forms)
    ------------------------------------------------------------------
    kae_utils         env, atomic, results, zoo (the notebooks' library)

Importing the package imports nothing else.
"""
