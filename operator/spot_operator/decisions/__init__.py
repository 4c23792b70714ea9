"""Decisions that earn their keep: interruption-risk scorers, a model registry, and what they are measured on.

``features`` (pure) turns price and availability history into numbers; ``rules`` and ``xgb`` turn
those into a probability of interruption within a horizon; ``registry`` keeps trained models and
``scorer`` chains them with a fallback to the rules. The policy that acts on the scores is
:mod:`spot_operator.planning.decisions`.
"""
