"""Torch-free core: the notebooks' parameters and their checks (:mod:`.params`), repository paths
(:mod:`.paths`), atomic file writes (:mod:`.atomic`), the smoke scale and the work log (:mod:`.scale`).

Nothing here imports torch, so the runner and the tooling can import it at the top.
"""
