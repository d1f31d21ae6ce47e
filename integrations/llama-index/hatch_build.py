"""Ship the start-up ``.pth`` file in editable installs too.

A ``.pth`` file is read only from site-packages, so the editable wheel
(which otherwise just points at ``src/``) must carry it and its module.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_STARTUP_FILES = {
    "src/llama_index_callbacks_aitel.pth": "llama_index_callbacks_aitel.pth",
    "src/_llama_index_callbacks_aitel_startup.py": "_llama_index_callbacks_aitel_startup.py",
}


class StartupFilesHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            build_data["force_include_editable"].update(_STARTUP_FILES)
