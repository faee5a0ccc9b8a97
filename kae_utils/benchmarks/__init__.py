"""Benchmarks: the task table of the scenes and the mini-Taskonomy (:mod:`.tasks`: loss, metric and colouring of
each task), a task's labels as samples for the label-based transferability estimators (:mod:`.samples`) and the
mini-Taskonomy itself (:mod:`.taskonomy`).
"""
