"""Stage 5: the ranking layer between scoring and emit — what a shop needs of a list beyond
the model's order. Each step is small, pure, switchable in settings and costs a bounded,
measured amount per recommendation:

:mod:`~streams.ranking.candidate` a candidate item with its score and why it is there ·
:mod:`~streams.ranking.search` the user's recent search steers the list ·
:mod:`~streams.ranking.rules` the merchandiser's rules (exclusions, boosts, caps, prices) ·
(:mod:`models.diversity`: maximal-marginal-relevance re-ranking over item text, shared with
offline evaluation) ·
:mod:`~streams.ranking.layer` the steps in order, on the scoring thread.
"""
