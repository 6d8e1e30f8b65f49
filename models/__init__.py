"""streamrec's models: recommenders, their training and ONNX export, model directories,
serving and offline evaluation. The stream serves what this package writes (see
``models.serving``).

Runtime side (numpy, scipy, onnxruntime; what a worker or ``streamrec evaluate`` loads):

* ``protocol``: the ``SessionRecommender`` base class and ``top_k``, the one ranking rule;
* ``errors``: ``ModelsError`` (a ``streams.errors.StreamrecError``) and its subclasses;
* ``vocabulary``: external item ids <-> dense indices;
* ``onnx_contract``: the exported scorer's inputs, outputs, opset and ``pad_batch``;
* ``model_dir``: reading a model directory; ``serving``: ``load_scorer``/``OnnxScorer``
  (the stream) and ``OnnxRecommender`` (offline);
* ``data``, ``evaluation``, ``baselines/``: benchmarks, metrics, classic recommenders;
* ``bench_scoring``; ``cli_evaluate``, ``cli_bench_scoring``, ``cli_common``: commands.

Train side (PyTorch and onnx, the ``[train]`` install): ``neural/`` (models, training loop,
the recommender adapter), ``export`` (ONNX export with parity check),
``model_dir_writer`` and ``cli_train``. ``tests/models/test_runtime_imports.py`` keeps the
runtime side free of torch and onnx; ``tests/models/test_import_graph.py`` keeps the
package free of import cycles.
"""
