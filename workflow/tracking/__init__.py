"""Weights & Biases: one run per evaluation, written where the evaluation runs, collected after the jobs finish.

Compute side (what a Slurm task imports): :mod:`~workflow.tracking.spec`, :mod:`~workflow.tracking.evaluation`.
Driver side: :mod:`~workflow.tracking.readback`, :mod:`~workflow.tracking.check`,
:mod:`~workflow.tracking.experiment`, :mod:`~workflow.tracking.sync`, :mod:`~workflow.tracking.summary`.
"""
