"""Evaluation: metrics of predictions (:mod:`.metrics`) and the run's results, claims and metrics.json
(:mod:`.results`).
"""
