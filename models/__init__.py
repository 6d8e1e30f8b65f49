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
* ``blend``, ``neighbourhood``: the served blend of the network with session-kNN, sequential
  rules and repeat terms (tables in ``MODEL_DIR/knn/``); ``blend_fit`` chooses it on
  validation;
* ``data/``: every dataset read into one ``Benchmark`` (Diginetica directories, Amazon
  leave-one-out directories with item text, event files) and the cold-item protocol;
* ``evaluation``, ``baselines/``: metrics, classic recommenders (text-kNN among them);
* ``text/``: the multilingual text encoder and the cached item text vectors;
* ``bench_scoring``; ``cli_evaluate``, ``cli_bench_scoring``, ``cli_blend``, ``cli_common``:
  commands.

Train side (PyTorch and onnx, the ``[train]`` install): ``neural/`` (models, among them the
text-aware ``sessattn_text``; the training loop; the recommender adapter), ``export`` (ONNX
export with parity check), ``model_dir_writer`` and ``cli_train``.
``tests/models/test_runtime_imports.py`` keeps the runtime side free of torch and onnx;
``tests/test_import_graph.py`` keeps the packages free of import cycles.
"""
