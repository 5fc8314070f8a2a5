"""The QA service of each collection a process answers for — a server's, a worker's: the
default one loaded with the models, the others opened when first asked for and sharing those
models, at most `size` of them open (the least recently used closed first)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from docqa.answer.qa import QAService
from docqa.collection import DEFAULT, in_collection


class CollectionServices:
    def __init__(self, default: QAService, size: int) -> None:
        self.default = default
        self.size = size
        self._open: OrderedDict[str, QAService] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> QAService:
        """The service of collection `name`, its index opened (or a DocqaError saying why
        it cannot be: no such collection, no index yet)."""
        if name == DEFAULT:
            return self.default
        with self._lock:
            service = self._open.pop(name, None)
            if service is None:
                service = self.default.over(in_collection(self.default.settings, name))
            self._open[name] = service
            while len(self._open) > self.size:
                self._open.popitem(last=False)
            return service

    def opened(self) -> list[QAService]:
        """The services open now, the default's first."""
        with self._lock:
            return [self.default, *self._open.values()]
