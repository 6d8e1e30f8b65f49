"""Items and queries understood from their text: a pretrained multilingual sentence encoder
(Universal Sentence Encoder multilingual v3, quantized ONNX) run by ONNX Runtime.

:mod:`~models.text.asset` where the model file comes from (a pinned PyPI wheel, checked by
sha256) · :mod:`~models.text.encoder` strings in, unit-length 512-d vectors out ·
:mod:`~models.text.item_text` the text an item is embedded from.
"""
