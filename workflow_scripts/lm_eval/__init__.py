"""The OpenLLM Leaderboard v2 stage: lm-evaluation-harness on the base policy and, per variant, the policy
at the radius / eta-beta selected on VALIDATION, for the experiments that train instruction models.

- :mod:`.select`: the selection (validation results only), one JSON per experiment;
- :mod:`.run`: one lm-eval job per policy (``lm_eval.simple_evaluate``, the harness's files kept);
- :mod:`.normalize`: the leaderboard's normalisation, in one tested function;
- :mod:`.report`: the table (mean +- std over seeds) and the difference-to-SFT figure;
- :mod:`.demo_task`: a small offline task (multiple choice + generation) for the mini preset and tests;
- :mod:`.workflow`: paths and flags for rules/lm_eval.smk.
"""
