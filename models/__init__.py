"""Offline side of streamrec: recommenders, training, ONNX export, the model registry and
offline evaluation. The stream serves what this package writes (see ``models.serving``)."""
