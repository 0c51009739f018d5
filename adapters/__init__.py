"""Built-in adapters of glkm_prior, installed under the import name ``glkm_adapters``.

(The folder is ``adapters/`` in the source tree; the bare import name ``adapters`` belongs to
an unrelated PyPI distribution, so setup.cfg maps the folder to ``glkm_adapters``.)
Each module is a pluggy plugin registered through the ``glkm_prior`` entry-point group,
exactly like a third-party adapter.
"""
