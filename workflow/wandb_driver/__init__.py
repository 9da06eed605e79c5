"""W&B's driver half: what the driver and the commands do with the runs the evaluations wrote.

Each module has one job: :mod:`~workflow.wandb_driver.readback` reads runs back (offline files or the W&B API),
:mod:`~workflow.wandb_driver.check` compares them with the results the jobs returned,
:mod:`~workflow.wandb_driver.experiment` is the loop's observer that journals that check and keeps the
experiment-level run, :mod:`~workflow.wandb_driver.sync` uploads offline runs (``sync RUN_DIR``), and
:mod:`~workflow.wandb_driver.summary` tabulates what W&B holds (``summary RUN_DIR``).

The compute half (the spec every process gets, the evaluation's own run) is :mod:`workflow.tracking`, a layer
below: a Slurm task imports that package and never this one.
"""
