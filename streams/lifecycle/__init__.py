"""The model lifecycle's offline half: what closes the loop from served recommendations back
to a new model (see docs/lifecycle.md).

* :mod:`~streams.lifecycle.export`: a window of the event stream (and of the attribution log)
  to JSON-lines files, read exactly on every broker (``streamrec export-events``);
* :mod:`~streams.lifecycle.retrain`: export, train, evaluate the candidate against the
  promoted model on the newest held-out day, publish and start a shadow or A/B experiment
  only when it is not worse (``streamrec retrain``, the scheduled job).

Nothing here imports PyTorch: training runs as a ``streamrec train`` subprocess.
"""
