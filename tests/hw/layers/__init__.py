"""Tests of bitfab's FINN-style streaming layers, one ``test_<layer>.py`` per
``bitfab.hw.layers.<layer>`` module.

Shared helpers: :mod:`.cases` (:class:`~.cases.Case`, stream words, ``make_case``/``run_case``),
``<layer>_cases.py`` (that layer's independent numpy reference and case maker),
:mod:`.finn_exec` (FINN/ONNX execution of one node), :mod:`.graph_layers` (layers of real FINN
dataflow graphs), :mod:`.figures` (cycle and synthesis figures for docs/hw_layers.md).
"""
