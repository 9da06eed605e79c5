"""Weights & Biases on the compute side: one run per evaluation, written where the evaluation runs.

:mod:`~workflow.tracking.spec` is the picklable spec every process gets (run ids, the key kept out of
messages); :mod:`~workflow.tracking.evaluation` opens, logs and closes an evaluation's run. What the driver does
with those runs afterwards (read them back, check them, the experiment run, ``sync``, ``summary``) is
:mod:`workflow.wandb_driver`, a layer above.
"""
