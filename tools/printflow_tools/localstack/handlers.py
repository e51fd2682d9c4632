"""Load a function's handler in process, with the environment the template gives it."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from printflow_tools.localstack.shared_process import share_one_process
from printflow_tools.localstack.template import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]
_import_lock = threading.Lock()


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_handler(spec: FunctionSpec, extra_env: dict[str, str] | None = None) -> Handler:
    """Import ``functions/<name>/app.py`` as a fresh module and return its handler.

    Handlers read their settings at import (cold start), so the function's template
    environment (plus ``extra_env``) is in place while the module is imported. Each call
    is a new "cold start": module-level state is not shared between loads.
    """
    share_one_process()  # every function in this process shares Powertools' state
    module_file, _, attribute = spec.handler.rpartition(".")
    path = spec.code_uri / f"{module_file.replace('.', '/')}.py"
    module_name = f"printflow_function_{spec.logical_id}_{id(object())}"
    with _import_lock, _environment({**spec.environment, **(extra_env or {})}):
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot load handler of {spec.logical_id} from {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        loader_spec.loader.exec_module(module)
    handler: Handler = getattr(module, attribute)
    return handler
