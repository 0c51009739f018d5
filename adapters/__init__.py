"""Built-in adapters of glkm_prior, installed under the import name ``glkm_adapters``.

(The folder is ``adapters/`` in the source tree; the bare import name ``adapters`` belongs to
an unrelated PyPI distribution, so setup.cfg maps the folder to ``glkm_adapters``.)
Each module is a pluggy plugin. :data:`BUILTIN_PLUGINS` is the one list of them: the plugin
host (:mod:`glkm_prior.plugins`) imports each module and registers it with ``pm.register``,
the call that registers a third-party adapter found through the ``glkm_prior`` entry points.
Importing this package imports none of its modules.
"""

#: plugin name -> module; registered in this order by ``glkm_prior.plugins.make_plugin_manager``
BUILTIN_PLUGINS = {
    "glkm": "glkm_adapters.glkm_branch",
    "native": "glkm_adapters.native_branch",
    "nonblind": "glkm_adapters.nonblind",
    "dip": "glkm_adapters.dip",
    "vdip": "glkm_adapters.vdip",
    "fast": "glkm_adapters.fast",
    "l0": "glkm_adapters.l0",
    "svola": "glkm_adapters.svola",
    "bird": "glkm_adapters.bird",
    "blinddps": "glkm_adapters.blinddps",
}
