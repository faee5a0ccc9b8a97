"""The batch runner of the notebooks, split by role: spec -> execute -> executors -> schedule -> sweep -> cli
(with console and tables beside them); see :mod:`kae_tools`. Importing the package imports nothing else, so
the worker subprocess (``python -m kae_tools.runner.execute``) starts without the rest."""
