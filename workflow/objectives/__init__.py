"""Objectives: what one evaluation computes, the built-in MLP, a user's Python function or a user's command.

Each kind turns a candidate (its genes, name, seed) into a :class:`~workflow.records.Result`; failures are
exceptions that :func:`workflow.evaluate.run_pack` turns into failed results.

- :mod:`~workflow.objectives.mlp`: the built-in MLP, trained by :mod:`workflow.trainer`;
- :mod:`~workflow.objectives.python`: ``function(hparams, context) -> float | Mapping[str, float]``;
- :mod:`~workflow.objectives.command`: a program run once per evaluation (:mod:`~workflow.objectives.process`,
  :mod:`~workflow.objectives.placeholders`);
- :mod:`~workflow.objectives.context`: what a user's objective gets besides the genes (name, seed, workdir,
  attempt, device, ``report``); :mod:`~workflow.objectives.scoring`: metrics to fitness.
"""
