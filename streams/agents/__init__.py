"""The Faust agents: ``ingest`` (input topics → events-by-user) and ``state`` (events-by-user
→ state, scoring, recommendations). The stage logic they call lives in the modules named
after the stages (``streams.ingest``, ``streams.state``, ``streams.candidates``,
``streams.scoring``, ``streams.emit``)."""
