"""The built-in regulation plugins, each registered through the ``portal.plugins`` entry points."""
