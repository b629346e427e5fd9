"""Brevitas model zoo, datasets, QAT training and QONNX export (the first stage of bitfab).

Public API (import the submodules; this package imports nothing so the CLI starts fast):

- :func:`bitfab.models.data.load_dataset` - Fashion-MNIST / digits as uint8 ``[N, 1, 28, 28]``.
- :func:`bitfab.models.config.make_config`, :class:`bitfab.models.config.ModelConfig`,
  :func:`bitfab.models.config.load_toml` - validated per-layer bit widths.
- :func:`bitfab.models.zoo.build_model` - tfc, sfc, lfc, cnv-s, cnv-m as Brevitas modules.
- :func:`bitfab.models.train.train` - QAT, checkpoint/resume, ``model.onnx`` + ``metrics.json``.
- :func:`bitfab.models.export.export_model`, :func:`bitfab.models.export.check_export` - QONNX
  export and its check against torch with qonnx's ``execute_onnx``.
"""
