"""Benchmarks: the task table of the scenes and the mini-Taskonomy (:mod:`.tasks`: loss, metric and colouring of
each task) and the mini-Taskonomy itself (:mod:`.taskonomy`).
"""
